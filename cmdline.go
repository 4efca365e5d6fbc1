package main

import (
	"errors"
	"strings"
)

// splitCommand splits a command setting (FLIP_CALLS_CMD and the other
// drain and sync commands) into words the way a shell would for the simple
// cases an operator writes: blanks separate words, and '...' or "..."
// groups words with spaces (asterisk -rx 'core show channels count'), with
// \" and \\ inside double quotes. There is no shell behind it: no
// variables, globbing, pipes or redirections; for those, name a script.
// "" is no command (nil).
func splitCommand(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	runes := []rune(s)
	for i := 0; i < len(runes); i++ {
		r := runes[i]
		switch {
		case quote == '\'':
			if r == '\'' {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case quote == '"':
			switch {
			case r == '"':
				quote = 0
			case r == '\\' && i+1 < len(runes) && (runes[i+1] == '"' || runes[i+1] == '\\'):
				i++
				cur.WriteRune(runes[i])
			default:
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case r == '\n' || r == '\r':
			return nil, errors.New("a line break in the command")
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, errors.New("a quote (" + string(quote) + ") is not closed")
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}
