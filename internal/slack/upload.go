package slack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	goslack "github.com/slack-go/slack"

	"github.com/chmedic/chmedic/actions"
)

// UploadAPI is the part of slack-go's client the Uploader uses: Slack's
// files v2 flow (files.getUploadURLExternal, a POST of the bytes to the URL
// it returns, files.completeUploadExternal sharing the file into a
// channel's thread). *goslack.Client implements it.
type UploadAPI interface {
	GetUploadURLExternalContext(ctx context.Context, params goslack.GetUploadURLExternalParameters) (*goslack.GetUploadURLExternalResponse, error)
	UploadToURL(ctx context.Context, params goslack.UploadToURLParameters) error
	CompleteUploadExternalContext(ctx context.Context, params goslack.CompleteUploadExternalParameters) (*goslack.CompleteUploadExternalResponse, error)
}

var _ UploadAPI = (*goslack.Client)(nil)

// Uploader attaches files to threads; it implements actions.FileUploader.
// The bot needs the files:write scope.
type Uploader struct {
	api     UploadAPI
	timeout time.Duration
}

var _ actions.FileUploader = (*Uploader)(nil)

// NewUploader returns an Uploader over api. timeout bounds one whole upload
// (default 5 minutes).
func NewUploader(api UploadAPI, timeout time.Duration) *Uploader {
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	return &Uploader{api: api, timeout: timeout}
}

// UploadFile uploads f.Path as f.Name into the thread f.ThreadTS of
// f.Channel, with f.Comment as the message, and returns the file's id.
func (u *Uploader) UploadFile(ctx context.Context, f actions.FileUpload) (string, error) {
	if f.Channel == "" {
		return "", errors.New("slack upload: no channel")
	}
	fi, err := os.Stat(f.Path)
	if err != nil {
		return "", fmt.Errorf("slack upload: %w", err)
	}
	if fi.Size() == 0 {
		return "", fmt.Errorf("slack upload: %s is empty", f.Path)
	}
	if f.Name == "" {
		f.Name = fi.Name()
	}
	ctx, cancel := context.WithTimeout(ctx, u.timeout)
	defer cancel()
	url, err := u.api.GetUploadURLExternalContext(ctx, goslack.GetUploadURLExternalParameters{FileName: f.Name, FileSize: int(fi.Size())})
	if err != nil {
		return "", fmt.Errorf("slack files.getUploadURLExternal %s: %w", f.Name, err)
	}
	if err := u.api.UploadToURL(ctx, goslack.UploadToURLParameters{UploadURL: url.UploadURL, File: f.Path, Filename: f.Name}); err != nil {
		return "", fmt.Errorf("slack upload of %s: %w", f.Name, err)
	}
	title := f.Title
	if title == "" {
		title = f.Name
	}
	done, err := u.api.CompleteUploadExternalContext(ctx, goslack.CompleteUploadExternalParameters{
		Files:           []goslack.FileSummary{{ID: url.FileID, Title: title}},
		Channel:         f.Channel,
		ThreadTimestamp: f.ThreadTS,
		InitialComment:  f.Comment,
	})
	if err != nil {
		return "", fmt.Errorf("slack files.completeUploadExternal %s: %w", f.Name, err)
	}
	if len(done.Files) != 1 || done.Files[0].ID == "" {
		return "", fmt.Errorf("slack files.completeUploadExternal %s: %d files in the answer", f.Name, len(done.Files))
	}
	return done.Files[0].ID, nil
}
