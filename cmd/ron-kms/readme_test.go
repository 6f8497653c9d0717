package main

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"
)

// The README's walk-throughs are transcripts: `$ command` lines, each
// followed by the output it printed. testdata/script/walkthrough.txtar runs
// the same commands against a real server. TestREADMEWalkthrough keeps the
// two in step, so that what the README shows is what the binary does:
//
//   - every `$ ron-kms ...` line (without its `| ...`, `> FILE` or `; ...`
//     tail) is an exec line of the script, in the same order; a `$ sed -i
//     s/A/B/ F` is a `replace F A B` there, and a `$ printf 'TEXT' > F` is a
//     file F of the archive holding TEXT;
//   - a file a README command reads (--file, --in, --sig, --envelope) was
//     made by a README command above it;
//   - a command the README shows failing (`exit status 1`, or an error line
//     `ron-kms: ...`) is a `! exec`, and the others are not;
//   - every outcome line the README shows for a command, or for a later `cat
//     F` or `grep P F` of the file it wrote (the members ok, kid, previous,
//     satisfied_mode and alg, and every plain-text line), matches a stdout,
//     stderr or grep assertion that follows the exec line, and a line naming
//     a version (#v2) only one that names the same version;
//   - every positive assertion that follows the exec line matches a line the
//     README shows, unless the README shows only part of the output (through
//     a pipe or grep);
//   - `$ VAR=value` takes a key name the README printed before.
//
// Any other README command is an error: keep the walk-throughs simple.
// Blocks fenced as ```cluster are the exception: they are transcripts of
// the cluster of scripts/cluster-up ("Run a cluster"), which this test
// cannot start; internal/clustertest holds what they show (a rotation on
// one node used by another, no error with one etcd member down, degraded
// answers without quorum).
// TestREADMEWalkthroughDrift checks that each of these rules bites.

const (
	// clusterFence is the info string of README blocks this test skips.
	clusterFence    = "cluster"
	readmeFile      = "../../README.md"
	walkthroughFile = "testdata/script/walkthrough.txtar"
)

func TestREADMEWalkthrough(t *testing.T) {
	readme, err := os.ReadFile(readmeFile)
	if err != nil {
		t.Fatal(err)
	}
	script, err := os.ReadFile(walkthroughFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range checkWalkthrough(string(readme), string(script)) {
		t.Error(p)
	}
}

// readmeStep is one `$ ` line of the README with the output shown for it.
type readmeStep struct {
	line    int      // line number in the README
	text    string   // the command as typed
	want    []string // the script line it must be, as words (nil: none)
	out     []string // output shown, including a later cat or grep of the file it wrote
	partial bool     // out is only part of the output (piped or grepped)
	vars    map[string]string
}

// fails reports whether the README shows the command failing.
func (s *readmeStep) fails() bool {
	for _, l := range s.out {
		if exitFailRE.MatchString(l) || strings.HasPrefix(l, "ron-kms: ") {
			return true
		}
	}
	return false
}

var (
	assignRE   = regexp.MustCompile(`^([A-Z][A-Z0-9_]*)=(\S+)$`)
	printfRE   = regexp.MustCompile(`^printf '([^']*)' > (\S+)$`)
	sedRE      = regexp.MustCompile(`^sed -i s/([^/]*)/([^/]*)/ (\S+)$`)
	readRE     = regexp.MustCompile(`^(cat|grep) .*?(\S+)$`)
	exitFailRE = regexp.MustCompile(`^exit status [1-9]`)
	exitRE     = regexp.MustCompile(`^exit status \d+$`)
	outcomeRE  = regexp.MustCompile(`"(ok|kid|previous|satisfied_mode|alg)":`)
	versionRE  = regexp.MustCompile(`#v\d+\b`)
	varRE      = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?`)

	// inputFlags are the flags of ron-kms commands that name a file to read.
	inputFlags = map[string]bool{"--file": true, "--in": true, "--sig": true, "--envelope": true}
)

// parseREADME returns the walk-through steps of readme (every `$ ` line in
// a fenced block), the files its printf commands write, and the problems
// found on the way.
func parseREADME(readme string) (steps []*readmeStep, files map[string]string, problems []string) {
	files = map[string]string{}
	writer := map[string]*readmeStep{} // file → the ron-kms step that wrote it
	vars := map[string]string{}
	var shown strings.Builder // every output line so far
	var cur *readmeStep       // where output lines go
	fenced, skipped := false, false
	for i, l := range strings.Split(readme, "\n") {
		n := i + 1
		if strings.HasPrefix(l, "```") {
			fenced, cur = !fenced, nil
			skipped = fenced && strings.TrimSpace(strings.TrimPrefix(l, "```")) == clusterFence
			continue
		}
		if !fenced || skipped || strings.TrimSpace(l) == "" {
			continue
		}
		cmd, ok := strings.CutPrefix(l, "$ ")
		if !ok {
			if cur != nil {
				cur.out = append(cur.out, strings.TrimSpace(l))
				shown.WriteString(l + "\n")
			}
			continue
		}
		cur = nil
		var (
			assign = assignRE.FindStringSubmatch(cmd)
			printf = printfRE.FindStringSubmatch(cmd)
			sed    = sedRE.FindStringSubmatch(cmd)
			read   = readRE.FindStringSubmatch(cmd)
		)
		switch {
		case strings.HasPrefix(cmd, "export "):
		case assign != nil:
			if !strings.Contains(shown.String(), assign[2]+"#v") {
				problems = append(problems, fmt.Sprintf("README:%d: %s names no key printed above", n, cmd))
			}
			vars[assign[1]] = assign[2]
		case printf != nil:
			files[printf[2]] = strings.ReplaceAll(printf[1], `\n`, "\n")
		case sed != nil:
			steps = append(steps, &readmeStep{line: n, text: cmd, want: []string{"replace", sed[3], sed[1], sed[2]}})
		case read != nil:
			if cur = writer[read[2]]; cur == nil {
				problems = append(problems, fmt.Sprintf("README:%d: %s reads %s, which no ron-kms command above wrote", n, cmd, read[2]))
			} else if read[1] == "grep" {
				cur.partial = true
			}
		case strings.HasPrefix(cmd, "ron-kms "):
			s := &readmeStep{line: n, text: cmd, vars: copyVars(vars)}
			c := cmd
			if j := strings.Index(c, " | "); j >= 0 {
				c, s.partial = c[:j], true
			}
			if j := strings.Index(c, " ; "); j >= 0 {
				c = c[:j]
			}
			out := ""
			if j := strings.Index(c, " > "); j >= 0 {
				c, out = c[:j], strings.TrimSpace(c[j+3:])
			}
			s.want = append([]string{"exec"}, scriptWords(c)...)
			// The files it reads must exist: made above by printf or by
			// another command.
			for i, w := range s.want[:len(s.want)-1] {
				f := s.want[i+1]
				if _, made := files[f]; inputFlags[w] && !made && writer[f] == nil {
					problems = append(problems, fmt.Sprintf("README:%d: %s reads %s, which no command above creates", n, cmd, f))
				}
			}
			if out != "" {
				writer[out] = s
			}
			steps = append(steps, s)
			cur = s
		default:
			problems = append(problems, fmt.Sprintf("README:%d: %q: the walk-through test knows only ron-kms, printf > F, sed -i, cat, grep and VAR=value", n, cmd))
		}
	}
	return steps, files, problems
}

func copyVars(m map[string]string) map[string]string {
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// scriptCmd is one command line of a testscript.
type scriptCmd struct {
	line  int
	neg   bool
	words []string // the command and its arguments, unquoted; no & suffix
}

// parseScript returns the command lines of a testscript.
func parseScript(script string) []scriptCmd {
	var cmds []scriptCmd
	for i, l := range strings.Split(script, "\n") {
		w := scriptWords(l)
		if len(w) == 0 {
			continue
		}
		c := scriptCmd{line: i + 1}
		if w[0] == "!" {
			c.neg, w = true, w[1:]
		}
		if n := len(w); n > 1 && strings.HasPrefix(w[n-1], "&") && strings.HasSuffix(w[n-1], "&") {
			w = w[:n-1]
		}
		c.words = w
		cmds = append(cmds, c)
	}
	return cmds
}

// scriptWords splits a line as testscript does: words separated by blanks,
// single quotes (with ” for a quote inside them), # starting a comment.
func scriptWords(line string) []string {
	var words []string
	var w strings.Builder
	inWord, quoted := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quoted && c == '\'' && i+1 < len(line) && line[i+1] == '\'':
			w.WriteByte('\'')
			i++
		case c == '\'':
			quoted, inWord = !quoted, true
		case !quoted && (c == ' ' || c == '\t'):
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		case !quoted && !inWord && c == '#':
			i = len(line)
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words
}

// assertion is a positive stdout, stderr or grep check of a script.
type assertion struct {
	line    int
	pattern string
}

// assertionsAfter returns the positive output assertions between cmds[i]
// and the next command that replaces stdout and stderr (exec or wait).
func assertionsAfter(cmds []scriptCmd, i int) []assertion {
	var as []assertion
	for _, c := range cmds[i+1:] {
		if c.words[0] == "exec" || c.words[0] == "wait" {
			break
		}
		switch c.words[0] {
		case "stdout", "stderr", "grep":
			if c.neg {
				continue
			}
			for _, a := range c.words[1:] {
				if !strings.HasPrefix(a, "-") {
					as = append(as, assertion{c.line, a})
					break
				}
			}
		}
	}
	return as
}

// checkWalkthrough returns every way in which the README's walk-throughs
// and the walkthrough script disagree.
func checkWalkthrough(readme, script string) []string {
	steps, files, problems := parseREADME(readme)
	execs := 0
	for _, s := range steps {
		if s.want[0] == "exec" {
			execs++
		}
	}
	if execs < 10 {
		problems = append(problems, fmt.Sprintf("README: found %d `$ ron-kms` lines in its walk-throughs, want at least 10", execs))
	}
	ar := txtar.Parse([]byte(script))
	for name, want := range files {
		if got, ok := archiveFile(ar, name); !ok {
			problems = append(problems, fmt.Sprintf("%s: no file %s, which the README's printf writes", walkthroughFile, name))
		} else if got != want {
			problems = append(problems, fmt.Sprintf("%s: %s holds %q, the README's printf writes %q", walkthroughFile, name, got, want))
		}
	}
	cmds := parseScript(string(ar.Comment))
	next, lastLine := 0, 0
	for _, s := range steps {
		at := -1
		for j := next; j < len(cmds); j++ {
			if equalWords(cmds[j].words, s.want) {
				at = j
				break
			}
		}
		if at < 0 {
			problems = append(problems, fmt.Sprintf("README:%d: %q: no %q in %s after line %d",
				s.line, s.text, strings.Join(s.want, " "), walkthroughFile, lastLine))
			continue
		}
		next, lastLine = at+1, cmds[at].line
		if s.want[0] == "exec" {
			problems = append(problems, checkOutcomes(s, cmds[at], assertionsAfter(cmds, at))...)
		}
	}
	return problems
}

// checkOutcomes holds the README's shown output of s to the script's
// command c and the assertions that follow it.
func checkOutcomes(s *readmeStep, c scriptCmd, as []assertion) []string {
	var problems []string
	where := fmt.Sprintf("README:%d (%s:%d)", s.line, walkthroughFile, c.line)
	if s.fails() != c.neg {
		if s.fails() {
			problems = append(problems, where+": the README shows it failing; the script must say ! exec")
		} else {
			problems = append(problems, where+": the README shows it succeeding; the script must not say ! exec")
		}
	}
	res := make([]*regexp.Regexp, len(as))
	for i, a := range as {
		p := varRE.ReplaceAllStringFunc(a.pattern, func(v string) string {
			if val, ok := s.vars[varRE.FindStringSubmatch(v)[1]]; ok {
				return regexp.QuoteMeta(val)
			}
			return v
		})
		re, err := regexp.Compile("(?m)" + p)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s:%d: %v", walkthroughFile, a.line, err))
			re = regexp.MustCompile(`^\b$`) // matches nothing
		}
		res[i] = re
	}
	for _, l := range s.out {
		if exitRE.MatchString(l) || !isOutcome(l) {
			continue
		}
		v := versionRE.FindString(l)
		covered := false
		for i, re := range res {
			if re.MatchString(l) && (v == "" || strings.Contains(as[i].pattern, v)) {
				covered = true
			}
		}
		if !covered {
			problems = append(problems, fmt.Sprintf("%s: the README shows %q, which no stdout, stderr or grep after the exec asserts", where, l))
		}
	}
	if s.partial {
		return problems
	}
	for i, re := range res {
		matched := false
		for _, l := range s.out {
			if re.MatchString(l) {
				matched = true
			}
		}
		if !matched {
			problems = append(problems, fmt.Sprintf("%s:%d: %q matches no line of the output the README shows for %q (README:%d)",
				walkthroughFile, as[i].line, as[i].pattern, s.text, s.line))
		}
	}
	return problems
}

// isOutcome reports whether a shown output line is one the script must
// assert: a member that says what happened, or a line of plain text.
func isOutcome(l string) bool {
	return outcomeRE.MatchString(l) || !strings.ContainsAny(l[:1], `{}[]"`)
}

func archiveFile(ar *txtar.Archive, name string) (string, bool) {
	for _, f := range ar.Files {
		if f.Name == name {
			return string(f.Data), true
		}
	}
	return "", false
}

func equalWords(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestREADMEWalkthroughDrift edits the README or the script the ways they
// drift apart and expects checkWalkthrough to notice each.
func TestREADMEWalkthroughDrift(t *testing.T) {
	readme, err := os.ReadFile(readmeFile)
	if err != nil {
		t.Fatal(err)
	}
	script, err := os.ReadFile(walkthroughFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name        string
		file        string // "README" or "script"
		old, new    string
		wantProblem string
	}{
		{"README command edited", "README",
			"$ ron-kms keys create --tenant acme --purpose invoices\n", "$ ron-kms keys create --tenant acme --purpose bills\n",
			`no "exec ron-kms keys create --tenant acme --purpose bills"`},
		{"README command added", "README",
			"$ ron-kms keys rotate $KEY\n", "$ ron-kms keys get $KEY\n\n$ ron-kms keys rotate $KEY\n",
			`no "exec ron-kms keys get $KEY"`},
		{"script command edited", "script",
			"exec ron-kms keys rotate $KEY\n", "exec ron-kms keys rotate $KEY --op-id r1\n",
			`no "exec ron-kms keys rotate $KEY"`},
		{"script out of order", "script",
			"exec ron-kms verify --kid $KEY --file invoice.txt --sig sig-v1.json\nstdout '\"ok\": true'\n\nexec ron-kms keys rotate $KEY\n",
			"exec ron-kms keys rotate $KEY\n\nexec ron-kms verify --kid $KEY --file invoice.txt --sig sig-v1.json\nstdout '\"ok\": true'\n",
			`no "exec ron-kms keys rotate $KEY"`},
		{"tamper step gone from the script", "script",
			"replace invoice.txt 1,234 9,234\n", "",
			`no "replace invoice.txt 1,234 9,234"`},
		{"file content differs from the README's printf", "script",
			"-- invoice.txt --\nInvoice 17: 1,234 EUR\n", "-- invoice.txt --\nInvoice 17: 1.234 EUR\n",
			`invoice.txt holds "Invoice 17: 1.234 EUR\n"`},
		{"file missing from the script", "script",
			"-- release.txt --\nRelease v2.4.0\n", "",
			"no file release.txt"},
		{"README shows the tampered file verifying", "README",
			"  \"ok\": false,\n", "  \"ok\": true,\n",
			`the README shows "\"ok\": true,"`},
		{"a cluster transcript not fenced as one", "README",
			"```cluster\n$ make cluster\n", "```\n$ make cluster\n",
			`"make cluster": the walk-through test knows only`},
		{"README drops the exit status", "README",
			"exit status 1\n", "",
			"the README shows it succeeding"},
		{"script expects success after the tamper", "script",
			"! exec ron-kms verify --kid $KEY --file invoice.txt --sig sig-v1.json\n", "exec ron-kms verify --kid $KEY --file invoice.txt --sig sig-v1.json\n",
			"the README shows it failing"},
		{"README shows the wrong version after rotation", "README",
			"#v2\",\n  \"previous\"", "#v3\",\n  \"previous\"",
			`#v3\",", which no stdout, stderr or grep after the exec asserts`},
		{"README output lacks a member the script asserts", "README",
			"        \"origin\": \"generated\"\n", "",
			`"\"origin\": \"generated\"" matches no line`},
		{"script stops asserting the outcome", "script",
			"stdout '\"satisfied_mode\": \"pq_only\"'\n", "",
			`"\"satisfied_mode\": \"pq_only\""`},
		{"README reads a file it never made", "README",
			"$ printf 'Invoice 17: 1,234 EUR\\n' > invoice.txt\n", "",
			"reads invoice.txt, which no command above creates"},
		{"README command the test does not know", "README",
			"$ cat sig-v1.json\n", "$ curl -s http://127.0.0.1:9446/healthz\n",
			"the walk-through test knows only"},
		{"README variable names no printed key", "README",
			"$ KEY=acme/invoices/ed25519/", "$ KEY=acme/invoices/ed25519/0",
			"names no key printed above"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, s := string(readme), string(script)
			target := &r
			if tc.file == "script" {
				target = &s
			}
			if !strings.Contains(*target, tc.old) {
				t.Fatalf("%s no longer contains %q: update this test", tc.file, tc.old)
			}
			*target = strings.Replace(*target, tc.old, tc.new, 1)
			problems := checkWalkthrough(r, s)
			for _, p := range problems {
				if strings.Contains(p, tc.wantProblem) {
					return
				}
			}
			t.Errorf("no problem mentions %q; got %q", tc.wantProblem, problems)
		})
	}
}
