-- +goose Up
-- Who signed, as the authenticated principal ("user:<sub>", "apikey:<id>"),
-- beside the signer_email and signer_name the request carried: the email
-- and the name are what the signature shows, the subject is the identity
-- the deployment verified. NULL for a signature made without a credential
-- (open mode) and for signatures made before this column existed.
ALTER TABLE signatures.signatures ADD COLUMN signer_subject varchar(300);

-- +goose Down
ALTER TABLE signatures.signatures DROP COLUMN signer_subject;
