package bleve

import (
	"testing"

	"github.com/blevesearch/bleve/v2/mapping"
)

// TestMappingKeepsDocValuesAndTermsOnlyWhereRead pins the cheap mapping:
// doc values only for the fields a query reads them from, and fields that
// no query searches stored but not indexed. Bleve's defaults (doc values
// and terms for every field) cost a third more CPU per indexed document.
func TestMappingKeepsDocValuesAndTermsOnlyWhereRead(t *testing.T) {
	m, ok := newMapping().(*mapping.IndexMappingImpl)
	if !ok {
		t.Fatalf("mapping is a %T", newMapping())
	}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	docValues := map[string]bool{fCreatedAt: true, fTitlePrefix: true, fStatus: true, fContentType: true, fCreatedBy: true}
	storedOnly := map[string]bool{fID: true, fOwner: true, fContentSize: true, fVersion: true, fUpdatedAt: true,
		fS3Key: true, fCreatedAtExact: true, fUpdatedAtExact: true, fLSN: true}
	doc := m.DefaultMapping
	if len(doc.Properties) == 0 {
		t.Fatal("no fields in the mapping")
	}
	for name, p := range doc.Properties {
		for _, f := range p.Fields {
			if f.DocValues != docValues[name] {
				t.Errorf("field %s: doc values %v, want %v", name, f.DocValues, docValues[name])
			}
			if storedOnly[name] && f.Index {
				t.Errorf("field %s is indexed; no query searches it", name)
			}
			if !storedOnly[name] && !f.Index {
				t.Errorf("field %s is not indexed; queries search it", name)
			}
		}
	}
}
