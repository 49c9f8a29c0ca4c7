package proc

import "testing"

func TestReserveOffsets(t *testing.T) {
	offsets := []int{0, 1, 100, 101}
	a, base, err := ReserveOffsets(offsets)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Release()
	for i, off := range offsets {
		if a.Ports[i] != base+off {
			t.Fatalf("port %d = %d, want base %d + %d", i, a.Ports[i], base, off)
		}
	}
	// A second reservation never overlaps the first while it is held.
	b, _, err := ReserveOffsets(offsets)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Release()
	held := map[int]bool{}
	for _, p := range a.Ports {
		held[p] = true
	}
	for _, p := range b.Ports {
		if held[p] {
			t.Fatalf("port %d reserved twice", p)
		}
	}
	if _, _, err := ReserveOffsets([]int{-1}); err == nil {
		t.Fatal("a negative offset was accepted")
	}
}
