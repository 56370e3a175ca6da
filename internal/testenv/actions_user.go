package testenv

import (
	"context"
	"sync"
)

// The actions user: what chmedic's clusters[].actions.clickhouse logs in as
// in tests of the actions (collect_logs reads system tables with it), kept
// apart from the read-only probe user as the config requires. Its profile
// logs queries like the others and is not read-only (actions run SQL).
const (
	DefaultActionsUser     = "chmedic_actions"
	DefaultActionsPassword = "chmedic-actions-pw"
)

var actionsUsers sync.Map // *Env → *actionsUserOnce

type actionsUserOnce struct {
	once sync.Once
	err  error
}

// ActionsUser adds the actions user (profile DefaultActionsUser) to the
// environment once, and returns its name and password. Calls after the
// first return the same user.
func (e *Env) ActionsUser(ctx context.Context) (user, password string, err error) {
	v, _ := actionsUsers.LoadOrStore(e, &actionsUserOnce{})
	o := v.(*actionsUserOnce)
	o.once.Do(func() {
		o.err = e.AddUser(ctx, User{Name: DefaultActionsUser, Password: DefaultActionsPassword, Profile: DefaultActionsUser,
			Settings: [][2]string{{"log_queries", "1"}}})
	})
	return DefaultActionsUser, DefaultActionsPassword, o.err
}
