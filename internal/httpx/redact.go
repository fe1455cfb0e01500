package httpx

import "strings"

// apiKeyPrefix starts every docstream API key (auth.APIKeyPrefix; not
// imported: httpx knows nothing about any one service).
const apiKeyPrefix = "dsk_"

// invitationsSegment starts the path of a signing invitation, whose next
// segment is its token.
const invitationsSegment = "/invitations/"

// LogPath is p as a log line may show it: any path segment that holds an
// API key ("dsk_…", say a key pasted where its id belongs in
// DELETE /apikeys/{id}) is cut to "dsk_REDACTED", so that no key reaches
// a log through a URL. Paths without one are returned unchanged, without
// allocating.
//
// The segment after "invitations" (a signing invitation's token, which
// lets its holder sign) is cut to "REDACTED" the same way.
func LogPath(p string) string {
	if !strings.Contains(p, apiKeyPrefix) && !strings.Contains(p, invitationsSegment) {
		return p
	}
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if j := strings.Index(s, apiKeyPrefix); j >= 0 {
			segs[i] = s[:j] + apiKeyPrefix + "REDACTED"
		}
		if i > 0 && segs[i-1] == "invitations" && s != "" {
			segs[i] = "REDACTED"
		}
	}
	return strings.Join(segs, "/")
}
