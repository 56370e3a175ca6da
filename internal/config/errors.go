package config

import "github.com/chmedic/chmedic/internal/yamlerr"

// FieldError is one problem found in a configuration file: File, Line and
// Col locate it and Path names the field, e.g. "clusters[0].keeper.nodes".
// It prints as "file:line:col: path: message".
type FieldError = yamlerr.Error

// Errors is every problem found in a configuration file, in file order. Load
// and Parse return it (as error) when the file is invalid.
type Errors = yamlerr.List
