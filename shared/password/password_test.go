package password

import (
	"testing"

	"github.com/beehive-im/beehive/shared/errs"
)

func TestHashAndCheck(t *testing.T) {
	h, err := Hash("correct horse", 4)
	if err != nil {
		t.Fatal(err)
	}
	if !Check(h, "correct horse") || Check(h, "wrong horse") {
		t.Fatal("check mismatch")
	}
	if CheckMissing("anything") {
		t.Fatal("missing account must never match")
	}
}

func TestValidateNamesField(t *testing.T) {
	for _, pw := range []string{"", "short", string(make([]byte, 73))} {
		err := Validate("password", pw, 8)
		if e := errs.As(err); e == nil || e.Code != errs.InvalidArgument || e.Field != "password" {
			t.Errorf("Validate(%q) = %v", pw, err)
		}
	}
	if err := Validate("password", "long enough", 8); err != nil {
		t.Fatal(err)
	}
}
