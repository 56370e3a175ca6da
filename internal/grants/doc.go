// Package grants reads ClickHouse's SHOW GRANTS output and computes, with no
// I/O, what a DDL freeze by SQL access control (ClickHouse 20.4 and later)
// revokes from a user or role and what gives it back.
//
// # What SHOW GRANTS prints
//
// SHOW GRANTS FOR x prints one statement per line, in an order that recreates
// x's rights when executed on an empty user (ClickHouse's
// InterpreterShowGrantsQuery and AccessRightsElement formatting):
//
//	GRANT SELECT, INSERT ON db.* TO app
//	GRANT SELECT(id, name), INSERT(id) ON db.t TO app
//	GRANT CREATE TABLE ON db.* TO app WITH GRANT OPTION
//	REVOKE DROP TABLE ON db.keep FROM app
//	REVOKE GRANT OPTION FOR CREATE TABLE ON db.sealed FROM app
//	GRANT reader, writer TO app
//	GRANT admin_role TO app WITH ADMIN OPTION
//
// Identifiers are back-quoted when they need it (`my-db`.`t`), a privilege
// may carry its own column list, several ON clauses may share a statement,
// newer servers print wildcards (db.tab*, db*.*) and global-with-parameter
// objects (ON S3, ON *). A partial revoke with only the grant option taken
// away is "REVOKE GRANT OPTION FOR x" in SHOW GRANTS (ASTGrantQuery) and
// "REVOKE GRANT OPTION x" in AccessRightsElement::toString; both parse. The
// server sorts the lines so that a scope comes before the scopes inside it
// and grants before partial revokes (AccessRights getElements), which is
// what makes replaying them in order exact. Aliases (UPDATE for ALTER UPDATE,
// ALL PRIVILEGES for ALL, USAGE for nothing) are resolved to the canonical
// names.
//
// # The model
//
// Rights are a tree as in ClickHouse's AccessRights: *.* at the root, then
// databases, tables, columns. Each node holds the effective set of leaf
// privileges (and the subset held with grant option). GRANT p ON s adds p's
// leaves to the node of s and every node below it, REVOKE p ON s removes
// them from s and everything below it (REVOKE GRANT OPTION FOR removes only
// the grant option), and a group granted at a level keeps only the leaves
// grantable there: CREATE on db.* is CREATE DATABASE, CREATE TABLE, CREATE
// VIEW and CREATE DICTIONARY, because CREATE TEMPORARY TABLE and CREATE
// FUNCTION exist only on *.* (AccessType.h levels; ClickHouse trims a grant
// the same way, eraseNotGrantable). Only the leaves of the freeze's
// privilege set are modelled; other privileges are kept as parsed, for
// display and comparison.
//
// Revoking on *.* therefore takes a privilege away at every level: a user
// that holds CREATE only on db.* (directly, or through GRANT ALL ON db.*)
// loses it there too, and REVOKE of a privilege the user does not hold is a
// no-op. So the freeze is one statement per target,
//
//	REVOKE CREATE, ALTER, DROP, TRUNCATE, OPTIMIZE ON *.* FROM `app`
//
// naming only the configured privileges the target holds somewhere. Never ON
// CLUSTER: it is sent to every node directly.
//
// RENAME and EXCHANGE are no privileges of their own: RENAME TABLE and
// EXCHANGE TABLES need DROP TABLE on the source and CREATE TABLE on the
// target (InterpreterRenameQuery), so revoking CREATE and DROP freezes them.
//
// The restore is computed from two snapshots: the one stored before the
// freeze (B) and one read at restore time (R). The goal is R plus the DDL
// part of B: grants someone added while the freeze was on are kept (and
// reported), nothing outside the privilege set is touched. The statements
// are generated top-down from that tree (a GRANT where a node holds more
// than its parent, a REVOKE where it holds less, so partial revokes come
// back after the grant they cut into), then every statement that would not
// change R is dropped. Without concurrent changes this is exactly the DDL
// part of B's own SHOW GRANTS lines.
//
// A target is refused (Refuse) when it holds ALL on *.* or any privilege of
// the ACCESS MANAGEMENT group other than the read-only SHOW ACCESS ones, or
// ROLE ADMIN: such a user could give itself DDL back.
//
// Roles: privileges held through a granted role are not the user's own and
// REVOKE ... FROM user does not touch them; a role that gives DDL must be a
// target itself. Snapshot.Roles lists them so that the plan can say so.
//
// Limitations, stated in the plan: a privilege name this package does not
// know is classified by its first word (ALTER x, CREATE x and DROP x belong
// to ALTER, CREATE and DROP unless they name an access entity such as USER,
// ROLE, POLICY, QUOTA, PROFILE or NAMED COLLECTION); wildcard scopes
// (db.tab*) are modelled as nodes of their own, beside the named tables
// they match.
package grants
