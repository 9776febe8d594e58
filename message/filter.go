package message

import "strings"

// FilterMode says what a Filter does with a forbidden word.
type FilterMode string

const (
	// FilterMask replaces every rune of a matched word with '*'.
	FilterMask FilterMode = "mask"
	// FilterReject refuses the content (ErrForbiddenWord).
	FilterReject FilterMode = "reject"
)

// Filter finds forbidden words in text with an Aho–Corasick automaton over
// runes: one pass over the text whatever the number of words, overlapping
// matches ("he", "she", "hers" in "ushers") and non-ASCII words included.
// Matching ignores ASCII case. A Filter is immutable and safe for
// concurrent use.
type Filter struct {
	mode FilterMode
	// Node 0 is the root. next holds each node's children; fail its
	// failure link; out the length in runes of the longest word that ends
	// at the node (itself or through its failure chain), 0 for none.
	// Words ending at the same place are suffixes of the longest one, so
	// masking the longest masks them all.
	next []map[rune]int32
	// rootASCII is the root's transitions for ASCII runes, the hot path.
	rootASCII [128]int32
	fail      []int32
	out       []int32
}

// NewFilter builds a filter for words (empty words are ignored; an empty
// list matches nothing). Unknown modes mask.
func NewFilter(words []string, mode FilterMode) *Filter {
	if mode != FilterReject {
		mode = FilterMask
	}
	f := &Filter{mode: mode, next: []map[rune]int32{{}}, fail: []int32{0}, out: []int32{0}}
	for _, w := range words {
		w = strings.TrimSpace(w)
		if w == "" {
			continue
		}
		n, depth := int32(0), int32(0)
		for _, r := range w {
			r = fold(r)
			child, ok := f.next[n][r]
			if !ok {
				child = int32(len(f.next))
				f.next = append(f.next, map[rune]int32{})
				f.fail = append(f.fail, 0)
				f.out = append(f.out, 0)
				f.next[n][r] = child
			}
			n = child
			depth++
		}
		f.out[n] = depth
	}
	// Breadth-first: a node's failure link is the longest proper suffix of
	// its path that is also a path from the root.
	queue := make([]int32, 0, len(f.next))
	for r, c := range f.next[0] {
		f.fail[c] = 0
		queue = append(queue, c)
		if r < 128 {
			f.rootASCII[r] = c
		}
	}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		if f.out[n] == 0 {
			f.out[n] = f.out[f.fail[n]]
		}
		for r, c := range f.next[n] {
			fl := f.fail[n]
			for {
				if t, ok := f.next[fl][r]; ok {
					f.fail[c] = t
					break
				}
				if fl == 0 {
					f.fail[c] = 0
					break
				}
				fl = f.fail[fl]
			}
			queue = append(queue, c)
		}
	}
	return f
}

// Mode returns the filter's mode.
func (f *Filter) Mode() FilterMode { return f.mode }

func fold(r rune) rune {
	if 'A' <= r && r <= 'Z' {
		return r + ('a' - 'A')
	}
	return r
}

func (f *Filter) step(n int32, r rune) int32 {
	for {
		if n == 0 {
			if r < 128 {
				return f.rootASCII[r]
			}
			if t, ok := f.next[0][r]; ok {
				return t
			}
			return 0
		}
		if t, ok := f.next[n][r]; ok {
			return t
		}
		n = f.fail[n]
	}
}

// Contains reports whether text contains a forbidden word.
func (f *Filter) Contains(text string) bool {
	if f == nil || len(f.next) == 1 {
		return false
	}
	n := int32(0)
	for _, r := range text {
		n = f.step(n, fold(r))
		if f.out[n] > 0 {
			return true
		}
	}
	return false
}

// Mask returns text with every rune of every forbidden word replaced by
// '*', and whether anything was replaced.
func (f *Filter) Mask(text string) (string, bool) {
	if f == nil || len(f.next) == 1 {
		return text, false
	}
	// First pass finds matches; runes are only copied once one exists.
	var masked []bool
	var runes []rune
	n := int32(0)
	i := 0
	for _, r := range text {
		n = f.step(n, fold(r))
		if l := f.out[n]; l > 0 {
			if masked == nil {
				runes = []rune(text)
				masked = make([]bool, len(runes))
			}
			for j := i - int(l) + 1; j <= i; j++ {
				masked[j] = true
			}
		}
		i++
	}
	if masked == nil {
		return text, false
	}
	var b strings.Builder
	b.Grow(len(text))
	for j, r := range runes {
		if masked[j] {
			b.WriteByte('*')
		} else {
			b.WriteRune(r)
		}
	}
	return b.String(), true
}

// Apply filters text by the filter's mode: the masked text, or
// ErrForbiddenWord in reject mode. A nil filter lets everything through.
func (f *Filter) Apply(text string) (string, error) {
	if f == nil {
		return text, nil
	}
	if f.mode == FilterReject {
		if f.Contains(text) {
			return "", ErrForbiddenWord
		}
		return text, nil
	}
	out, _ := f.Mask(text)
	return out, nil
}
