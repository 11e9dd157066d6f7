package labkit

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// Sent is what sg_persist -vvv reports having sent: the CDB and, for PR
// OUT, the parameter list.
type Sent struct {
	CDB    []byte
	Params []byte // nil for PR IN
	// Err is the command's own outcome (a conflict, say): the bytes sent
	// are known either way.
	Err error
}

// Sent runs `sg_persist -vvv --no-inquiry ARGS DEV` and decodes the
// "Persistent reservation in/out cdb: [..]" line and the hex dump after
// "Persistent reservation out parameters:" from its standard error.
func (p PR) Sent(ctx context.Context, args ...string) (Sent, error) {
	argv := append([]string{"sg_persist", "-vvv", "--no-inquiry"}, args...)
	argv = append(argv, p.Dev)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	var s Sent
	if err := cmd.Run(); err != nil {
		ce := &CmdError{Argv: argv, ExitCode: -1, Stderr: stderr.String(), Err: err}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			ce.ExitCode = ee.ExitCode()
		} else {
			return s, ce
		}
		s.Err = ce
	}
	cdb, params, err := parseVerbose(stderr.String())
	if err != nil {
		return s, fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
	}
	s.CDB, s.Params = cdb, params
	return s, nil
}

// parseVerbose finds the CDB and the PR OUT parameter dump in sg_persist
// -vvv output.
func parseVerbose(out string) (cdb, params []byte, err error) {
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		low := strings.ToLower(l)
		switch {
		case strings.Contains(low, "persistent reservation") && strings.Contains(low, "cdb:"):
			a, b := strings.IndexByte(l, '['), strings.IndexByte(l, ']')
			if a < 0 || b < a {
				return nil, nil, fmt.Errorf("cdb line %q has no [bytes]", l)
			}
			cdb, err = hex.DecodeString(strings.ReplaceAll(l[a+1:b], " ", ""))
			if err != nil {
				return nil, nil, fmt.Errorf("cdb line %q: %w", l, err)
			}
		case strings.Contains(low, "persistent reservation out parameters:"):
			end := i + 1
			for end < len(lines) && strings.HasPrefix(lines[end], " ") {
				end++
			}
			params, err = parseHexDump(strings.Join(lines[i+1:end], "\n"))
			if err != nil {
				return nil, nil, fmt.Errorf("parameter dump: %w", err)
			}
		}
	}
	if cdb == nil {
		return nil, nil, fmt.Errorf("no cdb line in sg_persist -vvv output %q", out)
	}
	return cdb, params, nil
}

// Caps is REPORT CAPABILITIES as sg_persist returns it, decoded here
// (SPC-4 6.16.4) independently of fence/scsi.
type Caps struct {
	PTPLC, ATPC, SIPC, CRH, TMV, PTPLA bool
	TypeMask                           uint16 // bytes 4-5
}

// ReportCapabilities runs sg_persist --in --report-capabilities.
func (p PR) ReportCapabilities(ctx context.Context) (Caps, error) {
	b, err := p.in(ctx, "--report-capabilities")
	if err != nil {
		return Caps{}, err
	}
	if len(b) < 6 {
		return Caps{}, fmt.Errorf("report capabilities: %w (%d bytes)", errShort, len(b))
	}
	return Caps{
		CRH: b[2]&0x10 != 0, SIPC: b[2]&0x08 != 0, ATPC: b[2]&0x04 != 0, PTPLC: b[2]&0x01 != 0,
		TMV: b[3]&0x80 != 0, PTPLA: b[3]&0x01 != 0, TypeMask: binary.BigEndian.Uint16(b[4:]),
	}, nil
}
