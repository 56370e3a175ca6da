// Package playbooks holds chmedic's runbooks: one YAML file per playbook that
// says which alerts it covers, which probes matter most for them, the four
// runbook sections shown in Slack (meaning, impact, diagnosis, mitigation)
// and the approval-gated actions offered as buttons.
//
// The built-in playbooks are embedded from builtin/*.yaml. An operator may
// add playbooks, or replace a built-in one, with files in a directory (Load's
// dir): a file whose playbook has the same name as a built-in replaces it.
//
// A file looks like this:
//
//	name: keeper-readonly-replicas   # unique, [a-z0-9-]+
//	title: Replicated tables are read-only
//	priority: 60                     # optional, default 0
//	match:                           # any of these matcher sets (Alertmanager syntax)
//	  - '{alertname=~"ClickHouseReadonlyReplica|ClickHouseReplicasInReadOnly"}'
//	probes: [clickhouse.replicas, keeper.mntr]
//	sections:                        # all four required, Slack mrkdwn
//	  meaning: |
//	    ...
//	  impact: |
//	    ...
//	  diagnosis: |
//	    ...
//	  mitigation: |
//	    ...
//	actions:                         # optional
//	  - kind: ddl_freeze
//	    label: Freeze DDL            # ≤ 30 characters; defaults from the kind
//	    params: {duration: 30m}
//
// Loading is strict: unknown keys, bad matchers, unknown probes or action
// kinds, parameters the action kind rejects, missing or empty sections and
// duplicate names are all reported together, each as
// "FILE:LINE:COL: field.path: message".
//
// Matching picks, among the playbooks with a matcher set that matches every
// one of its matchers against the alert's labels, the one with the highest
// priority, then the one whose matching set has the most matchers, then the
// first by name. When nothing matches, the built-in "generic" playbook is
// returned with matched=false.
package playbooks
