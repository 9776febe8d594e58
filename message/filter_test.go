package message_test

import (
	"fmt"
	"math/rand"
	"strings"
	"testing"

	"github.com/beehive-im/beehive/message"
)

func TestFilterMask(t *testing.T) {
	cases := []struct {
		name  string
		words []string
		in    string
		want  string
	}{
		{"no words", nil, "anything", "anything"},
		{"no match", []string{"bad"}, "good text", "good text"},
		{"overlapping he she hers", []string{"he", "she", "hers"}, "ushers", "u*****"},
		{"she inside", []string{"he", "she", "his", "hers"}, "ahishe", "a*****"},
		{"word inside a longer word", []string{"he"}, "the cat", "t** cat"},
		{"suffix found through failure links", []string{"abcd", "bc"}, "abcx", "a**x"},
		{"adjacent matches", []string{"ab"}, "ababab", "******"},
		{"ascii case-insensitive", []string{"Darn"}, "DARN darn DaRn", "**** **** ****"},
		{"chinese", []string{"混蛋", "笨蛋"}, "你这个混蛋和笨蛋!", "你这个**和**!"},
		{"chinese overlapping", []string{"中国", "国人", "中国人民"}, "我们中国人民好", "我们****好"},
		{"mixed scripts", []string{"düm", "бля"}, "Düm und бляха", "*** und ***ха"},
		{"non-ascii is not case folded", []string{"é"}, "É é", "É *"},
		{"emoji", []string{"💩"}, "a💩b", "a*b"},
		{"empty word ignored", []string{"", " "}, "text", "text"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := message.NewFilter(c.words, message.FilterMask)
			got, changed := f.Mask(c.in)
			if got != c.want {
				t.Fatalf("Mask(%q) = %q, want %q", c.in, got, c.want)
			}
			if changed != (c.in != c.want) || f.Contains(c.in) != changed {
				t.Fatalf("changed=%v Contains=%v for %q", changed, f.Contains(c.in), c.in)
			}
		})
	}
}

// naiveMask is the obvious quadratic reference implementation.
func naiveMask(words []string, text string) string {
	rs := []rune(text)
	low := []rune(strings.Map(func(r rune) rune {
		if r >= 'A' && r <= 'Z' {
			return r + 32
		}
		return r
	}, text))
	mask := make([]bool, len(rs))
	for _, w := range words {
		wr := []rune(strings.ToLower(w))
		for i := 0; i+len(wr) <= len(low); i++ {
			if string(low[i:i+len(wr)]) == string(wr) {
				for j := i; j < i+len(wr); j++ {
					mask[j] = true
				}
			}
		}
	}
	for i := range rs {
		if mask[i] {
			rs[i] = '*'
		}
	}
	return string(rs)
}

func TestFilterAgreesWithNaiveMatcher(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	alphabet := []rune("abcAB中国人")
	word := func(n int) string {
		var b strings.Builder
		for i := 0; i < n; i++ {
			r := alphabet[rng.Intn(len(alphabet))]
			if r == 'A' || r == 'B' {
				r += 32 // words lower-case ASCII; case folding tested above
			}
			b.WriteRune(r)
		}
		return b.String()
	}
	for round := 0; round < 300; round++ {
		var words []string
		for i := 0; i < 1+rng.Intn(6); i++ {
			words = append(words, word(1+rng.Intn(4)))
		}
		var tb strings.Builder
		for i := 0; i < rng.Intn(30); i++ {
			tb.WriteRune(alphabet[rng.Intn(len(alphabet))])
		}
		text := tb.String()
		got, _ := message.NewFilter(words, message.FilterMask).Mask(text)
		if want := naiveMask(words, text); got != want {
			t.Fatalf("words %q text %q: got %q, want %q", words, text, got, want)
		}
	}
}

func TestFilterApplyModes(t *testing.T) {
	reject := message.NewFilter([]string{"bad"}, message.FilterReject)
	if _, err := reject.Apply("so BAD"); err != message.ErrForbiddenWord {
		t.Fatalf("reject: %v", err)
	}
	if out, err := reject.Apply("fine"); err != nil || out != "fine" {
		t.Fatalf("reject clean: %q %v", out, err)
	}
	if out, err := message.NewFilter([]string{"bad"}, message.FilterMask).Apply("so bad"); err != nil || out != "so ***" {
		t.Fatalf("mask: %q %v", out, err)
	}
	var none *message.Filter
	if out, err := none.Apply("bad"); err != nil || out != "bad" {
		t.Fatalf("nil filter: %q %v", out, err)
	}
}

func tenThousandWords() []string {
	rng := rand.New(rand.NewSource(7))
	latin := []rune("abcdefghijklmnopqrstuvwxyz")
	han := []rune("的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年")
	words := make([]string, 0, 10000)
	for i := 0; i < 10000; i++ {
		alpha := latin
		if i%3 == 0 {
			alpha = han
		}
		n := 3 + rng.Intn(6)
		var b strings.Builder
		for j := 0; j < n; j++ {
			b.WriteRune(alpha[rng.Intn(len(alpha))])
		}
		words = append(words, b.String())
	}
	return words
}

func BenchmarkFilter10k(b *testing.B) {
	f := message.NewFilter(tenThousandWords(), message.FilterMask)
	text := strings.Repeat("Hello there, this is an ordinary chat message 你好世界，今天天气不错。 ", 8)
	b.Run(fmt.Sprintf("mask-%dB", len(text)), func(b *testing.B) {
		b.SetBytes(int64(len(text)))
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			f.Mask(text)
		}
	})
	b.Run("contains", func(b *testing.B) {
		b.SetBytes(int64(len(text)))
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			f.Contains(text)
		}
	})
	b.Run("build", func(b *testing.B) {
		words := tenThousandWords()
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			message.NewFilter(words, message.FilterMask)
		}
	})
}
