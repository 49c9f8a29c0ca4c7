package plan

import (
	"fmt"
	"testing"
)

func sevenMembers() *Plan {
	p := &Plan{APIVersion: APIVersion, Kind: KindCluster, Metadata: Metadata{Name: "bench"}}
	p.Spec.TLS.Mode, p.Spec.TLS.Dir = TLSSelfSigned, "./pki"
	for i := 0; i < 7; i++ {
		p.Spec.Members = append(p.Spec.Members, Member{Name: fmt.Sprintf("m%d", i), IP: fmt.Sprintf("10.0.2.%d", i+1)})
	}
	return p
}

// DESIGN.md §7: validation of a 7-member plan < 10 ms.
func BenchmarkValidate7(b *testing.B) {
	p := sevenMembers()
	if fs := Validate(p); HasErrors(fs) {
		b.Fatalf("benchmark plan invalid: %+v", fs)
	}
	b.ReportAllocs()
	for b.Loop() {
		Validate(p)
	}
}

func BenchmarkExportJSON7(b *testing.B) {
	p := sevenMembers()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Export(p, FormatJSON); err != nil {
			b.Fatal(err)
		}
	}
}
