package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
)

// Result is one result printed by `ron-kms bench --json` (the type Result of
// internal/loadgen, copied here so that this module does not import the
// product's), plus the optional Label that scripts/bench-sweep adds. Fields
// this program does not know are ignored, so newer bench output still
// parses.
type Result struct {
	Mode           string           `json:"mode"` // "service" or "raw"
	Op             string           `json:"op"`
	Alg            string           `json:"alg"`
	PayloadBytes   int              `json:"payload_bytes"`
	Batch          int              `json:"batch"`
	Concurrency    int              `json:"concurrency"`
	Keys           int              `json:"keys"`
	ElapsedNS      int64            `json:"elapsed_ns"`
	Requests       int64            `json:"requests"`
	Items          int64            `json:"items"`
	OpsPerSec      float64          `json:"ops_per_sec"`
	RequestsPerSec float64          `json:"requests_per_sec"`
	Latency        Latency          `json:"latency"`
	Errors         map[string]int64 `json:"errors"`
	ErrorTotal     int64            `json:"error_total"`

	// Rate is the offered load in requests per second of a paced
	// (open-loop) run; 0 (or absent) is a closed loop, where each worker
	// waits for its answer before it sends the next request. bench may
	// write it as target_rate; Parse copies that here when rate is absent.
	Rate       float64 `json:"rate"`
	TargetRate float64 `json:"target_rate"`
	// AchievedRate is the request rate a paced run completed; Missed the
	// requests it had due but never sent.
	AchievedRate float64 `json:"achieved_rate"`
	Missed       int64   `json:"missed"`
	// PerOp holds the figures of each operation of the run (of a mix of
	// operations, whose Op is "mix").
	PerOp map[string]OpFigures `json:"per_op"`

	// Label names the run for a side-by-side comparison (keys.png), such as
	// "1k keys"; empty for ordinary runs.
	Label string `json:"label"`

	// File and Line say where the result was read: the line its JSON value
	// starts on, counted from one.
	File string `json:"-"`
	Line int    `json:"-"`
}

// Latency holds request latency percentiles in nanoseconds.
type Latency struct {
	Count int64 `json:"count"`
	P50   int64 `json:"p50_ns"`
	P95   int64 `json:"p95_ns"`
	P99   int64 `json:"p99_ns"`
	Max   int64 `json:"max_ns"`
}

// OpFigures are the figures of one operation of a run.
type OpFigures struct {
	Alg            string           `json:"alg"`
	PayloadBytes   int              `json:"payload_bytes"`
	Batch          int              `json:"batch"`
	Weight         int              `json:"weight"`
	Keys           int              `json:"keys"`
	Requests       int64            `json:"requests"`
	Items          int64            `json:"items"`
	OpsPerSec      float64          `json:"ops_per_sec"`
	RequestsPerSec float64          `json:"requests_per_sec"`
	Latency        Latency          `json:"latency"`
	Errors         map[string]int64 `json:"errors"`
	ErrorTotal     int64            `json:"error_total"`
}

// Modes of Result.
const (
	ModeService = "service"
	ModeRaw     = "raw"
)

// LineError is a malformed result: File and Line locate the line its JSON
// value starts on.
type LineError struct {
	File string
	Line int
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err) }

func (e *LineError) Unwrap() error { return e.Err }

// ReadFiles reads the results of every file in order.
func ReadFiles(paths []string) ([]Result, error) {
	var all []Result
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("benchplot: %w", err)
		}
		rs, err := Parse(p, data)
		if err != nil {
			return nil, err
		}
		all = append(all, rs...)
	}
	return all, nil
}

// Parse reads the results in data, which file names in errors. data holds
// JSON objects separated by white space: normally one per line (JSON lines,
// as scripts/bench-sweep writes), but the indented output of a plain
// `ron-kms bench --json > file` is accepted too. Blank input is no results.
// The first malformed or invalid object is returned as a *LineError that
// names the line the object starts on.
func Parse(file string, data []byte) ([]Result, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	var rs []Result
	for {
		start := int(dec.InputOffset())
		start += len(data[start:]) - len(bytes.TrimLeft(data[start:], " \t\r\n"))
		line := 1 + bytes.Count(data[:start], []byte("\n"))
		lineErr := func(err error) error { return &LineError{File: file, Line: line, Err: err} }

		var raw json.RawMessage
		err := dec.Decode(&raw)
		if err == io.EOF {
			return rs, nil
		}
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, lineErr(errors.New("truncated JSON object"))
			}
			return nil, lineErr(fmt.Errorf("malformed JSON: %v", err))
		}
		if raw[0] != '{' {
			return nil, lineErr(fmt.Errorf("want a JSON object, got %.20s", raw))
		}
		var r Result
		if err := json.Unmarshal(raw, &r); err != nil {
			return nil, lineErr(fmt.Errorf("malformed result: %v", err))
		}
		if r.Rate == 0 {
			r.Rate = r.TargetRate
		}
		if err := r.check(); err != nil {
			return nil, lineErr(err)
		}
		r.File, r.Line = file, line
		rs = append(rs, r)
	}
}

// check rejects a result that cannot be plotted.
func (r *Result) check() error {
	switch {
	case r.Mode != ModeService && r.Mode != ModeRaw:
		return fmt.Errorf("mode %q is neither %q nor %q", r.Mode, ModeService, ModeRaw)
	case r.Op == "":
		return errors.New("no op")
	case r.Concurrency < 1:
		return fmt.Errorf("concurrency %d is not positive", r.Concurrency)
	case r.Batch < 0 || r.Keys < 0 || r.PayloadBytes < 0:
		return errors.New("negative batch, keys or payload_bytes")
	}
	for _, f := range []struct {
		name string
		v    float64
	}{
		{"ops_per_sec", r.OpsPerSec}, {"requests_per_sec", r.RequestsPerSec},
		{"rate", r.Rate}, {"target_rate", r.TargetRate}, {"achieved_rate", r.AchievedRate},
	} {
		if f.v < 0 || math.IsNaN(f.v) || math.IsInf(f.v, 0) {
			return fmt.Errorf("%s %v is not a non-negative number", f.name, f.v)
		}
	}
	if l := r.Latency; l.P50 < 0 || l.P95 < 0 || l.P99 < 0 || l.Max < 0 {
		return errors.New("negative latency")
	}
	return nil
}
