package slack

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	goslack "github.com/slack-go/slack"

	"github.com/chmedic/chmedic/actions"
	"github.com/chmedic/chmedic/internal/slackfake"
)

func TestUploaderIntoThread(t *testing.T) {
	fake := slackfake.New(t, slackfake.Options{})
	api := goslack.New(slackfake.DefaultToken, goslack.OptionAPIURL(fake.URL()))
	ctx := context.Background()
	_, parent, err := api.PostMessageContext(ctx, "C123", goslack.MsgOptionText("alert", false))
	if err != nil {
		t.Fatal(err)
	}
	content := bytes.Repeat([]byte("bundle bytes\n"), 1000)
	path := filepath.Join(t.TempDir(), "b.tar.gz")
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	u := NewUploader(api, 0)
	id, err := u.UploadFile(ctx, actions.FileUpload{Path: path, Name: "logs.tar.gz", Channel: "C123", ThreadTS: parent, Comment: "3 sources collected"})
	if err != nil {
		t.Fatal(err)
	}
	files := fake.Files()
	if len(files) != 1 {
		t.Fatalf("files = %d", len(files))
	}
	f := files[0]
	if f.ID != id || f.Name != "logs.tar.gz" || f.Channel != "C123" || f.ThreadTS != parent || f.InitialComment != "3 sources collected" || !bytes.Equal(f.Content, content) {
		t.Errorf("file = %+v (content %d bytes)", f, len(f.Content))
	}
	replies := fake.Replies("C123", parent)
	found := false
	for _, m := range replies {
		found = found || m.Text == "3 sources collected"
	}
	if !found {
		t.Errorf("no message with the file in the thread: %+v", replies)
	}
}

func TestUploaderErrors(t *testing.T) {
	fake := slackfake.New(t, slackfake.Options{Channels: []string{"C1"}})
	api := goslack.New(slackfake.DefaultToken, goslack.OptionAPIURL(fake.URL()))
	u := NewUploader(api, 0)
	ctx := context.Background()
	if _, err := u.UploadFile(ctx, actions.FileUpload{Path: filepath.Join(t.TempDir(), "none"), Channel: "C1"}); err == nil {
		t.Error("uploaded a missing file")
	}
	path := filepath.Join(t.TempDir(), "x")
	os.WriteFile(path, []byte("x"), 0o600)
	if _, err := u.UploadFile(ctx, actions.FileUpload{Path: path, Channel: "C404"}); err == nil {
		t.Error("shared into a channel that does not exist")
	}
	if _, err := u.UploadFile(ctx, actions.FileUpload{Path: path, Channel: "C1"}); err != nil {
		t.Errorf("upload to C1: %v", err)
	}
}
