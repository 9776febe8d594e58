package cassandra

import "testing"

func TestMigrationsAreOrderedAndParse(t *testing.T) {
	ms, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 {
		t.Fatal("no migrations embedded")
	}
	for i, m := range ms {
		if i > 0 && m.Version <= ms[i-1].Version {
			t.Fatalf("migrations out of order at %d", m.Version)
		}
		if len(Statements(m.CQL)) == 0 {
			t.Fatalf("migration %d has no statements", m.Version)
		}
	}
}

func TestStatementsSplitOnLineEndingSemicolons(t *testing.T) {
	got := Statements("-- c\nCREATE TABLE a (x int PRIMARY KEY);\n\nCREATE TABLE b (\n  y text PRIMARY KEY -- 'a;b'\n);\n")
	if len(got) != 2 {
		t.Fatalf("got %d statements: %q", len(got), got)
	}
}
