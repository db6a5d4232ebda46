package cards

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestEscapeLine(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain text 1.2.3", "plain text 1.2.3"},
		{"[x](https://evil)", `\[x\](https://evil)`},
		{"**bold** and _it_", `\*\*bold\*\* and \_it\_`},
		{"`code` ~~s~~", "\\`code\\` \\~\\~s\\~\\~"},
		{`back\slash`, `back\\slash`},
		{"- item", `\- item`},
		{"+ item", `\+ item`},
		{"# head", `\# head`},
		{"> quote", `\> quote`},
		{"12. item", `12\. item`},
		{"3) item", `3\) item`},
		{"1.2.3", "1.2.3"},
		{"1.", `1\.`},
		{"-5", "-5"},
		{"-", `\-`},
		{"---", `\---`},
		{"= = =", `\= = =`},
		{"=5", "=5"},
		{"#123 fix", "#123 fix"},
		{"### h", `\### h`},
		{"####### seven", "####### seven"},
		{">x", `\>x`},
		{"+1", "+1"},
		{"v1.2.3", "v1.2.3"},
		{"a - b # c > d", "a - b # c > d"},
		{"", ""},
	}
	for _, tc := range tests {
		if got := escapeLine(tc.in); got != tc.want {
			t.Errorf("escapeLine(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// unescape undoes CommonMark backslash escapes of ASCII punctuation.
func unescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", s[i+1]) >= 0 {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func FuzzEscapeLine(f *testing.F) {
	for _, s := range []string{"[a](b)", "**x**", "1. a", "\\*", "- x", "_a_"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e := escapeLine(s)
		if got := unescape(e); got != s {
			t.Fatalf("escapeLine(%q) = %q reads back as %q", s, e, got)
		}
		for i := 0; i < len(e); i++ {
			switch e[i] {
			case '\\':
				i++
			case '*', '_', '[', ']', '`', '~':
				t.Fatalf("escapeLine(%q) = %q leaves %q live at %d", s, e, e[i], i)
			}
		}
	})
}

func TestTruncate(t *testing.T) {
	if got := truncate("short", 10); got != "short" {
		t.Errorf("truncate kept %q", got)
	}
	got := truncate(strings.Repeat("ab ", 100), 10)
	if utf8.RuneCountInString(got) > 10 || !strings.HasSuffix(got, Ellipsis) {
		t.Errorf("truncate = %q", got)
	}
	if got := truncate("ééééé", 3); got != "éé…" {
		t.Errorf("truncate multibyte = %q", got)
	}
}

func TestInlineAndBlock(t *testing.T) {
	if got := inline("a\n\tb\u0000  c\u2028d", 100); got != "a b c d" {
		t.Errorf("inline = %q", got)
	}
	if got := block("line one\n- two\r\n\n\n   3. three  ", 100); got != "line one\n\n\\- two\n\n3\\. three" {
		t.Errorf("block = %q", got)
	}
	many := strings.Repeat("x\n", 50)
	if got := block(many, 1000); strings.Count(got, "\n\n") != maxLines-1 || !strings.HasSuffix(got, Ellipsis) {
		t.Errorf("block kept %d lines: %q", strings.Count(got, "\n\n")+1, got)
	}
}
