package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"novanet/internal/model"
	"reflect"
	"strconv"
)

// Request decoding shared by the handlers.

type flexInt struct {
	set bool
	v   int64
}

func (f *flexInt) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		*f = flexInt{}
		return nil
	}
	var s string
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if s == "" {
			*f = flexInt{}
			return nil
		}
	} else {
		s = string(b)
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		// A type error gets the field's name added by the decoder.
		return &json.UnmarshalTypeError{Value: fmt.Sprintf("value %q", s), Type: reflect.TypeFor[int64]()}
	}
	*f = flexInt{set: true, v: v}
	return nil
}

func invalid(format string, args ...any) error {
	return model.Errorf(model.ErrInvalid, format, args...)
}

func parseAddr(s, what string) (netip.Addr, error) { return model.ParseAddr4(what, s) }

func parseID(s, what string) (int64, error) {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v <= 0 {
		return 0, model.Errorf(model.ErrNotFound, "%s %q not found: ids are positive integers", what, s)
	}
	return v, nil
}
