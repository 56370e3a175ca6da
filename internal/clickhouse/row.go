package clickhouse

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// Row is one result row: column name → value as the driver returned it
// (Nullable columns arrive dereferenced; NULL is nil). The accessors tolerate
// the variety of Go types the driver (or a test fake) uses for one SQL type:
// UInt8 vs UInt64, Enum as string, Decimal, pointers, and so on. A missing
// column or a value that does not convert reads as the zero value.
type Row map[string]any

// Has reports whether the row has the column and it is not NULL.
func (r Row) Has(col string) bool {
	v, ok := r[col]
	return ok && deref(v) != nil
}

// Int reads an integer column (floats are truncated, bools are 0/1,
// strings are parsed, times are Unix seconds).
func (r Row) Int(col string) int64 { return toInt(deref(r[col])) }

// Float reads a numeric column as float64.
func (r Row) Float(col string) float64 { return toFloat(deref(r[col])) }

// String reads a column as text.
func (r Row) String(col string) string { return toString(deref(r[col])) }

// Bool reads a flag column (UInt8 0/1, Bool, "true"/"1").
func (r Row) Bool(col string) bool {
	switch v := deref(r[col]).(type) {
	case nil:
		return false
	case bool:
		return v
	case string:
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		return err == nil && b
	default:
		return toFloat(v) != 0
	}
}

// Time reads a DateTime column (numbers are Unix seconds, strings are
// "2006-01-02 15:04:05" in UTC or RFC 3339).
func (r Row) Time(col string) time.Time {
	switch v := deref(r[col]).(type) {
	case time.Time:
		return v
	case string:
		s := strings.TrimSpace(v)
		for _, layout := range []string{"2006-01-02 15:04:05", time.RFC3339Nano, "2006-01-02"} {
			if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
				return t
			}
		}
		return time.Time{}
	case nil:
		return time.Time{}
	default:
		if _, ok := v.(bool); ok {
			return time.Time{}
		}
		secs := toInt(v)
		if secs == 0 {
			return time.Time{}
		}
		return time.Unix(secs, 0).UTC()
	}
}

// deref follows pointers; a nil pointer is nil.
func deref(v any) any {
	for v != nil {
		rv := reflect.ValueOf(v)
		if rv.Kind() != reflect.Pointer {
			return v
		}
		if rv.IsNil() {
			return nil
		}
		v = rv.Elem().Interface()
	}
	return nil
}

// floater and inter match decimal types (shopspring/decimal) without importing them.
type floater interface{ Float64() (float64, bool) }
type inter interface{ IntPart() int64 }

func toInt(v any) int64 {
	switch x := v.(type) {
	case nil:
		return 0
	case int:
		return int64(x)
	case int8:
		return int64(x)
	case int16:
		return int64(x)
	case int32:
		return int64(x)
	case int64:
		return x
	case uint:
		return clampU(uint64(x))
	case uint8:
		return int64(x)
	case uint16:
		return int64(x)
	case uint32:
		return int64(x)
	case uint64:
		return clampU(x)
	case float32:
		return floatToInt(float64(x))
	case float64:
		return floatToInt(x)
	case bool:
		if x {
			return 1
		}
		return 0
	case string:
		s := strings.TrimSpace(x)
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return i
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return floatToInt(f)
		}
		return 0
	case time.Time:
		if x.IsZero() {
			return 0
		}
		return x.Unix()
	case time.Duration:
		return int64(x)
	case inter:
		return x.IntPart()
	case floater:
		f, _ := x.Float64()
		return floatToInt(f)
	}
	return reflectInt(v)
}

func toFloat(v any) float64 {
	switch x := v.(type) {
	case nil:
		return 0
	case float32:
		return float64(x)
	case float64:
		return x
	case uint64:
		return float64(x)
	case uint:
		return float64(x)
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err != nil {
			return 0
		}
		return f
	case floater:
		f, _ := x.Float64()
		return f
	case time.Time:
		if x.IsZero() {
			return 0
		}
		return float64(x.UnixNano()) / 1e9
	}
	return float64(toInt(v))
}

func toString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case []byte:
		return string(x)
	case time.Time:
		if x.IsZero() {
			return ""
		}
		return x.UTC().Format("2006-01-02 15:04:05")
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case float32:
		return strconv.FormatFloat(float64(x), 'f', -1, 32)
	case fmt.Stringer:
		return x.String()
	}
	return fmt.Sprint(v)
}

func clampU(u uint64) int64 {
	if u > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(u)
}

func floatToInt(f float64) int64 {
	switch {
	case math.IsNaN(f):
		return 0
	case f >= math.MaxInt64:
		return math.MaxInt64
	case f <= math.MinInt64:
		return math.MinInt64
	}
	return int64(f)
}

// reflectInt handles named integer types (e.g. an enum type over int8).
func reflectInt(v any) int64 {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return clampU(rv.Uint())
	case reflect.Float32, reflect.Float64:
		return floatToInt(rv.Float())
	case reflect.Bool:
		if rv.Bool() {
			return 1
		}
	}
	return 0
}
