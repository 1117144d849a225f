package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
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

// decodeObject reads nova's one-key request body {key: {...}} strictly;
// missing is the error when key is absent or null. The body is decoded
// into a struct with that one tagged field, so type errors and NUL checks
// name the field with its key ("security_group_rule.from_port").
func decodeObject[T any](w http.ResponseWriter, r *http.Request, key, missing string) (*T, error) {
	wrapper := reflect.StructOf([]reflect.StructField{{
		Name: "Object", Type: reflect.TypeFor[*T](), Tag: reflect.StructTag(`json:"` + key + `"`),
	}})
	body := reflect.New(wrapper)
	if err := decode(w, r, body.Interface(), true); err != nil {
		return nil, err
	}
	v, _ := body.Elem().Field(0).Interface().(*T)
	if v == nil {
		return nil, invalid("%s", missing)
	}
	return v, nil
}

// pathID is the positive integer id in the URL's {id}.
func pathID(r *http.Request, what string) (int64, error) { return parseID(r.PathValue("id"), what) }
