package main

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestParseJSONLines(t *testing.T) {
	in := `{"mode":"service","op":"sign","alg":"ed25519","payload_bytes":0,"batch":1,"concurrency":8,"keys":1,"elapsed_ns":1000000000,"requests":14000,"items":14000,"ops_per_sec":14000.5,"requests_per_sec":14000.5,"latency":{"count":14000,"p50_ns":500000,"p95_ns":1100000,"p99_ns":2000000,"max_ns":9000000},"errors":{"Backpressure":3},"error_total":3,"some_future_field":{"x":1}}

{"mode":"raw","op":"sign","alg":"ed25519","batch":1,"concurrency":1,"ops_per_sec":25000}
{"mode":"service","op":"sign","alg":"ed25519","batch":1,"concurrency":64,"ops_per_sec":9000,"rate":10000,"achieved_rate":9000.5,"label":"1k keys","per_op":{"sign":{"alg":"ed25519","ops_per_sec":9000,"latency":{"p99_ns":7}}}}
`
	rs, err := Parse("in.jsonl", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 3 {
		t.Fatalf("got %d results, want 3", len(rs))
	}
	r := rs[0]
	if r.Mode != ModeService || r.Op != "sign" || r.Alg != "ed25519" || r.Concurrency != 8 || r.OpsPerSec != 14000.5 ||
		r.Latency.P50 != 500000 || r.Latency.P95 != 1100000 || r.Latency.P99 != 2000000 || r.Errors["Backpressure"] != 3 ||
		r.ElapsedNS != 1e9 || r.Rate != 0 {
		t.Errorf("first result parsed as %+v", r)
	}
	if rs[0].Line != 1 || rs[1].Line != 3 || rs[2].Line != 4 || rs[2].File != "in.jsonl" {
		t.Errorf("lines %d %d %d (file %q), want 1 3 4", rs[0].Line, rs[1].Line, rs[2].Line, rs[2].File)
	}
	o := rs[2]
	if o.Rate != 10000 || o.AchievedRate != 9000.5 || o.Label != "1k keys" ||
		o.PerOp["sign"].OpsPerSec != 9000 || o.PerOp["sign"].Latency.P99 != 7 || o.PerOp["sign"].Alg != "ed25519" {
		t.Errorf("optional fields parsed as %+v", o)
	}
}

func TestParseTargetRate(t *testing.T) {
	rs, err := Parse("f", []byte(`{"mode":"service","op":"sign","concurrency":64,"target_rate":5000,"achieved_rate":4990}`))
	if err != nil {
		t.Fatal(err)
	}
	if rs[0].Rate != 5000 {
		t.Errorf("Rate = %v, want target_rate 5000", rs[0].Rate)
	}
}

// TestParseIndented reads what a plain `ron-kms bench --json` prints (the
// encoder indents by two spaces), twice over.
func TestParseIndented(t *testing.T) {
	r := Result{Mode: ModeService, Op: "verify", Alg: "ed25519", Batch: 1, Concurrency: 4, OpsPerSec: 123}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	one := string(b) + "\n"
	rs, err := Parse("f", []byte(one+one))
	if err != nil {
		t.Fatal(err)
	}
	n := strings.Count(one, "\n")
	if len(rs) != 2 || rs[0].Line != 1 || rs[1].Line != n+1 || rs[1].OpsPerSec != 123 {
		t.Fatalf("got %d results at lines %d, %d; want 2 at 1, %d", len(rs), rs[0].Line, rs[len(rs)-1].Line, n+1)
	}
}

func TestParseEmpty(t *testing.T) {
	for _, in := range []string{"", "\n\n  \n"} {
		rs, err := Parse("f", []byte(in))
		if err != nil || len(rs) != 0 {
			t.Errorf("Parse(%q) = %v, %v; want nothing", in, rs, err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	const good = `{"mode":"service","op":"sign","concurrency":1,"ops_per_sec":1}` + "\n"
	for _, tc := range []struct {
		name, line, want string
	}{
		{"garbage", "hello\n", "malformed JSON"},
		{"truncated line", `{"mode":"serv` + "\n" + good, "malformed JSON"},
		{"missing brace", `{"mode":"service","op":"sign","concurrency":1` + "\n" + good, "malformed JSON"},
		{"truncated file", `{"mode":"service",`, "truncated"},
		{"array", "[1,2]\n", "want a JSON object"},
		{"wrong type", `{"mode":"service","op":"sign","concurrency":"8"}` + "\n", "concurrency"},
		{"no mode", `{"op":"sign","concurrency":1}` + "\n", "mode"},
		{"bad mode", `{"mode":"fast","op":"sign","concurrency":1}` + "\n", "mode"},
		{"no op", `{"mode":"raw","concurrency":1}` + "\n", "no op"},
		{"zero concurrency", `{"mode":"raw","op":"sign","concurrency":0}` + "\n", "concurrency 0"},
		{"negative ops", `{"mode":"raw","op":"sign","concurrency":1,"ops_per_sec":-1}` + "\n", "ops_per_sec"},
		{"negative rate", `{"mode":"service","op":"sign","concurrency":1,"rate":-5}` + "\n", "rate"},
		{"negative latency", `{"mode":"raw","op":"sign","concurrency":1,"latency":{"p99_ns":-1}}` + "\n", "latency"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Two good lines and a blank one first: the error must name line 4.
			_, err := Parse("results.jsonl", []byte(good+"\n"+good[:len(good)-1]+"\n"+tc.line))
			if err == nil {
				t.Fatal("no error")
			}
			var le *LineError
			if !errors.As(err, &le) || le.File != "results.jsonl" || le.Line != 4 {
				t.Fatalf("error %v (%T) does not name results.jsonl:4", err, err)
			}
			if !strings.HasPrefix(err.Error(), "results.jsonl:4: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q: want results.jsonl:4: ... %s", err, tc.want)
			}
		})
	}
}

// FuzzParse: Parse never panics, every error names a line of the input, and
// every result it returns passes check.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"mode":"service","op":"sign","concurrency":1,"ops_per_sec":1,"rate":5}` + "\n"))
	f.Add([]byte("{\n  \"mode\": \"raw\",\n  \"op\": \"verify\",\n  \"concurrency\": 1\n}\n"))
	f.Add([]byte(`{"mode":"raw"` + "\n[]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, err := Parse("f", data)
		if err != nil {
			var le *LineError
			if !errors.As(err, &le) || le.Line < 1 || le.Line > 1+strings.Count(string(data), "\n") {
				t.Fatalf("error %v does not name a line of the input", err)
			}
			return
		}
		for _, r := range rs {
			if err := r.check(); err != nil {
				t.Fatalf("returned an invalid result: %v", err)
			}
		}
	})
}

func TestWriteTable(t *testing.T) {
	rs, err := Parse("t.jsonl", []byte(`{"mode":"service","op":"sign","alg":"ed25519","batch":1,"concurrency":64,"keys":16,"ops_per_sec":9000,"latency":{"p50_ns":2000000,"p99_ns":5000000,"max_ns":9000000}}
{"mode":"raw","op":"sign","alg":"ed25519","batch":1,"concurrency":1,"keys":1,"ops_per_sec":30000}
{"mode":"service","op":"sign","alg":"ed25519","batch":1,"concurrency":64,"keys":16,"ops_per_sec":4000,"target_rate":4000,"label":"paced"}
`))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := writeTable(&b, rs); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines, want a header, a rule and 2 rows:\n%s", len(lines), b.String())
	}
	if !strings.Contains(lines[2], "| 9000 | 30000 | 0.300 | 2.000 | 5.000 | 9.000 |") {
		t.Errorf("paired row: %s", lines[2])
	}
	if !strings.Contains(lines[3], "| paced |") || !strings.Contains(lines[3], "| 4000 | 16 | 4000 | - | - |") {
		t.Errorf("unpaired paced row: %s", lines[3])
	}
}
