package audit

import (
	"fmt"
	"io"
	"strings"
)

// WriteText prints r for people: the verdict, what was checked, and the files
// in chain order.
func (r Report) WriteText(w io.Writer) error {
	var b strings.Builder
	if r.Problem != nil {
		fmt.Fprintf(&b, "FAIL %s\n", r.Problem.Error())
	} else {
		b.WriteString("OK\n")
	}
	checked := []string{"sequence", "links", "checkpoint coverage"}
	if r.MACsChecked {
		checked = append(checked, "record macs")
	}
	if r.SignaturesChecked {
		checked = append(checked, "checkpoint signatures")
	}
	fmt.Fprintf(&b, "checked: %s\n", strings.Join(checked, ", "))
	if !r.MACsChecked {
		b.WriteString("warning: no chain key: edited fields cannot be detected\n")
	}
	if !r.SignaturesChecked {
		b.WriteString("warning: no checkpoint public key: forged checkpoints cannot be detected\n")
	}
	fmt.Fprintf(&b, "records: %d (%d events), seq %d..%d, %d chain segment(s), %d checkpoint(s)\n",
		r.Records, r.Events, r.FirstSeq, r.LastSeq, r.Segments, r.Checkpoints)
	if r.StartsMidChain {
		fmt.Fprintf(&b, "note: the set starts at seq %d; earlier records are not in it\n", r.FirstSeq)
	}
	if r.Dropped > 0 {
		fmt.Fprintf(&b, "note: the emitter recorded %d dropped event(s)\n", r.Dropped)
	}
	for _, f := range r.Files {
		switch {
		case f.Lines == 0:
			fmt.Fprintf(&b, "  %s: empty\n", f.Path)
			continue
		case f.Records == 0:
			fmt.Fprintf(&b, "  %s: no valid record\n", f.Path)
			continue
		}
		fmt.Fprintf(&b, "  %s: %d record(s), seq %d..%d, %d checkpoint(s)\n", f.Path, f.Records, f.FirstSeq, f.LastSeq, f.Checkpoints)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
