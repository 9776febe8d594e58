package ids

import (
	"strings"
	"testing"
	"time"

	"github.com/beehive-im/beehive/shared/errs"
)

func TestNewIsSortableByTime(t *testing.T) {
	a := NewAt(time.Unix(1000, 0))
	b := NewAt(time.Unix(2000, 0))
	if !(a < b) || !Valid(a) {
		t.Fatalf("ids not sortable/valid: %s %s", a, b)
	}
	x, y := New(), New()
	if x == y || !(x < y) {
		t.Fatalf("ids in one millisecond must stay unique and increasing: %s %s", x, y)
	}
}

func TestConversationIDs(t *testing.T) {
	if got := P2P("b", "a"); got != "p:a:b" {
		t.Fatalf("P2P = %s", got)
	}
	cases := []struct {
		id   string
		ok   bool
		kind string
	}{
		{"p:a:b", true, "p"}, {"p:b:a", false, ""}, {"p:a:a", false, ""}, {"g:x1", true, "g"},
		{"g:", false, ""}, {"x:1", false, ""}, {"p:a", false, ""}, {"p:a:b:c", false, ""},
	}
	for _, c := range cases {
		kind, _, _, ok := ParseConversation(c.id)
		if ok != c.ok || kind != c.kind {
			t.Errorf("ParseConversation(%q) = %q,%v", c.id, kind, ok)
		}
	}
	if p, ok := Peer("p:a:b", "a"); !ok || p != "b" {
		t.Fatal("peer of a")
	}
	if _, ok := Peer("p:a:b", "c"); ok {
		t.Fatal("c is not in p:a:b")
	}
}

func TestValidateDeviceIDAcceptsPrintableUTF8UpTo64Bytes(t *testing.T) {
	for _, tc := range []struct {
		name, id string
		ok       bool
	}{
		{"ascii", "phone-1", true},
		{"utf8", "téléphone", true},
		{"64 bytes", strings.Repeat("a", 64), true},
		{"empty", "", false},
		{"65 bytes", strings.Repeat("a", 65), false},
		{"invalid utf8", "a\xffb", false},
		{"control character", "a\nb", false},
		{"delete", "a\x7fb", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateDeviceID(tc.id)
			if (err == nil) != tc.ok {
				t.Fatalf("ValidateDeviceID(%q) = %v, want ok=%v", tc.id, err, tc.ok)
			}
			if err != nil && errs.Public(err).Field != "device_id" {
				t.Fatalf("error %v does not name device_id", err)
			}
		})
	}
}

func TestValidateNamesTheFieldOfAMissingOrMalformedID(t *testing.T) {
	for _, c := range []struct {
		name, id string
		code     errs.Code
	}{
		{"missing", "", errs.InvalidArgument},
		{"malformed", "not an id!", errs.InvalidArgument},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := Validate("group_id", c.id)
			if !errs.HasCode(err, c.code) || errs.As(err).Field != "group_id" {
				t.Fatalf("Validate(%q) = %v", c.id, err)
			}
		})
	}
	if err := Validate("group_id", New()); err != nil {
		t.Fatalf("a fresh id: %v", err)
	}
}
