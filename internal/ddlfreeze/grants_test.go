package ddlfreeze

import (
	"reflect"
	"strings"
	"testing"

	"github.com/chmedic/chmedic/internal/grants"
)

const showApp = "SHOW GRANTS FOR `app`"

func TestFreezeAndUnfreezeRecorded(t *testing.T) {
	p := grants.DefaultPrivileges()
	before := []string{
		"GRANT SELECT, INSERT ON shop.* TO app",
		"GRANT CREATE TABLE, DROP TABLE ON shop.* TO app WITH GRANT OPTION",
		"REVOKE DROP TABLE ON shop.orders FROM app",
		"GRANT ALTER UPDATE(status) ON shop.orders TO app",
		"GRANT reader TO app",
	}
	frozen := []string{"GRANT SELECT, INSERT ON shop.* TO app", "GRANT reader TO app"}
	// During the freeze someone grants CREATE TABLE on another database.
	atRestore := append(frozen[:1:1], "GRANT CREATE TABLE ON scratch.* TO app", "GRANT reader TO app")
	restored := []string{
		"GRANT SELECT, INSERT ON shop.* TO app",
		"GRANT CREATE TABLE, DROP TABLE ON shop.* TO app WITH GRANT OPTION",
		"REVOKE DROP TABLE ON shop.orders FROM app",
		"GRANT ALTER UPDATE(status) ON shop.orders TO app",
		"GRANT CREATE TABLE ON scratch.* TO app",
		"GRANT reader TO app",
	}
	f := newFake("ch-1").on(showApp, before...).on(showApp, frozen...).on(showApp, atRestore...).on(showApp, restored...)

	snap, err := ReadSnapshot(t.Context(), f, app)
	if err != nil {
		t.Fatal(err)
	}
	fr, err := Freeze(t.Context(), f, snap, p)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Unfreeze(t.Context(), f, snap, p)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"REVOKE CREATE, ALTER, DROP ON *.* FROM `app`",
		"GRANT CREATE TABLE, DROP TABLE ON `shop`.* TO `app` WITH GRANT OPTION",
		"REVOKE DROP TABLE ON `shop`.`orders` FROM `app`",
		"GRANT ALTER UPDATE(`status`) ON `shop`.`orders` TO `app`",
	}
	if got := f.execs(); !reflect.DeepEqual(got, want) {
		t.Errorf("statements sent\n got  %q\n want %q", got, want)
	}
	for _, l := range f.log {
		if strings.Contains(l, "ON CLUSTER") {
			t.Errorf("ON CLUSTER sent: %s", l)
		}
	}
	if fr.Revoke != want[0] || len(fr.ViaRoles) != 1 {
		t.Errorf("freeze %+v", fr)
	}
	if len(res.AddedDuringFreeze) != 1 || res.AddedDuringFreeze[0].String() != "CREATE TABLE ON `scratch`.*" {
		t.Errorf("added during the freeze: %+v", res.AddedDuringFreeze)
	}
}

func TestFreezeReportsWhatDidNotTake(t *testing.T) {
	p := grants.DefaultPrivileges()
	// The REVOKE "succeeds" but the grants are unchanged (e.g. replicated
	// storage that has not caught up): the freeze is not verified.
	f := newFake("ch-2").on(showApp, "GRANT CREATE TABLE ON db.* TO app")
	snap, _ := ReadSnapshot(t.Context(), f, app)
	_, err := Freeze(t.Context(), f, snap, p)
	if err == nil || !strings.Contains(err.Error(), "node ch-2: user `app` is not frozen as planned: still holds CREATE TABLE ON `db`.*") {
		t.Errorf("got %v", err)
	}
	// A refused target sends nothing.
	f = newFake("ch-1").on(showApp, "GRANT ALL ON *.* TO app")
	snap, _ = ReadSnapshot(t.Context(), f, app)
	if _, err := Freeze(t.Context(), f, snap, p); err == nil || len(f.execs()) != 0 {
		t.Errorf("refused target: %v, sent %q", err, f.execs())
	}
	// A failed statement names the node and the statement.
	f = newFake("ch-1").on(showApp, "GRANT CREATE TABLE ON db.* TO app")
	f.execErr["REVOKE CREATE ON *.* FROM `app`"] = serverError(497, "Not enough privileges")
	snap, _ = ReadSnapshot(t.Context(), f, app)
	if _, err := Freeze(t.Context(), f, snap, p); err == nil || !strings.Contains(err.Error(), "node ch-1: REVOKE CREATE ON *.* FROM `app`: ") {
		t.Errorf("got %v", err)
	}
}

func TestUnfreezeTwiceDoesNothingMore(t *testing.T) {
	p := grants.DefaultPrivileges()
	before := []string{"GRANT CREATE TABLE ON db.* TO app"}
	f := newFake("ch-1").on(showApp, before...)
	snap, _ := ReadSnapshot(t.Context(), f, app)
	res, err := Unfreeze(t.Context(), f, snap, p)
	if err != nil || len(res.Statements) != 0 || len(f.execs()) != 0 {
		t.Errorf("already restored: %+v %v %q", res, err, f.execs())
	}
}
