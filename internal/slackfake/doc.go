// Package slackfake is a test-only fake of the Slack Web API, served by an
// httptest.Server, for exercising code that talks to Slack through
// github.com/slack-go/slack without reaching Slack.
//
// Import it from _test.go files (New ties the server to a test) and from
// cmd/chmedic-bench (Start: the caller closes it). It imports "testing".
// Incoming webhooks (IncomingWebhookURL, as Alertmanager's slack_configs
// post to them) are served too, see incoming.go.
//
// The fake keeps state (messages, thread replies, edits, ephemerals, files,
// users, user groups) and validates requests the way Slack does, answering
// with Slack's error codes in an HTTP 200 {"ok":false,"error":"..."} body:
//
//	srv := slackfake.New(t, slackfake.Options{Channels: []string{"C0INCIDENT"}})
//	api := slack.New(srv.Token(), slack.OptionAPIURL(srv.URL()))
//	_, ts, err := api.PostMessage("C0INCIDENT", slack.MsgOptionText("db down", false))
//	msg, _ := srv.Message("C0INCIDENT", ts)
//
// Requests are read the way Slack reads them. The token is taken from an
// "Authorization: Bearer" header or, for form and query requests only, from
// the "token" parameter (slack-go sends it as a form field for every method
// used here; Slack ignores a token inside a JSON body). Parameters come from
// the query string, application/x-www-form-urlencoded or multipart/form-data
// bodies, or a JSON object body.
//
// Methods implemented: auth.test, chat.postMessage, chat.update, chat.delete,
// chat.postEphemeral, chat.getPermalink, files.getUploadURLExternal (plus the upload URL it
// hands out), files.completeUploadExternal, conversations.history,
// conversations.replies, users.info, usergroups.users.list and
// apps.connections.open. Any other
// method answers unknown_method.
//
// Failure injection: FailNext makes the next calls of a method answer 429
// with Retry-After, a 5xx, or an {"ok":false} error; FailAlways makes every
// call of a method fail until ClearFailures (a missing scope); SetOutage
// makes every request answer 503. Operator faults: RevokeToken (every call
// answers token_revoked or invalid_auth until RestoreToken), RemoveChannel
// and AddChannel (channel_not_found until the channel exists).
//
// For the inbound direction (Slack calling the app), Sign and
// InteractionRequest sign request bodies exactly as Slack does, for use with
// slack.NewSecretsVerifier. BlockActions builds the block_actions payload of
// a click on a button of a message the fake holds (the button must exist),
// with a response_url the fake serves (ephemeral or in_channel replies,
// replace_original, delete_original; five uses within 30 minutes);
// ClickRequest signs it into the POST Slack sends to the interactivity URL.
//
// Socket Mode: apps.connections.open (app-level token only; the bot token
// answers not_allowed_token_type, as the app token does on every other
// method) hands out a single-use ws:// URL served at /ws: hello, websocket
// pings, the envelopes a test sends (SendEnvelope, SendClick,
// SendSlashCommand), disconnect (SendDisconnect); the acks the app writes
// back are recorded (Acks, AckFor).
//
// Options.Scopes models the bot token's scopes: a method needing another
// answers missing_scope with needed and provided.
package slackfake
