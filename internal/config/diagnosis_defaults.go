package config

// DefaultDiagnosis returns the diagnosis section's defaults: the one place
// the thresholds' defaults are kept (the probes' DefaultThresholds reads
// them from here).
func DefaultDiagnosis() Diagnosis { return defaults().Diagnosis }
