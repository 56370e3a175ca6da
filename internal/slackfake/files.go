package slackfake

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// uploadPath prefixes the upload URLs handed out by
// files.getUploadURLExternal. They are on the API's scheme and host, as
// slack-go sends the token only there (or to https Slack hosts).
const uploadPath = "/upload/v1/"

const maxAltText = 1000

// File is a file uploaded with files.getUploadURLExternal, a POST to the
// upload URL and files.completeUploadExternal.
type File struct {
	ID string
	// Name is the filename given to files.getUploadURLExternal and Length
	// the length declared there.
	Name   string
	Length int
	// Title is the title given on completion, or Name.
	Title   string
	Content []byte
	// UploadFilename is the filename of the multipart part uploaded, if the
	// upload was multipart.
	UploadFilename string
	AltText        string
	SnippetType    string
	// Channel is the first channel the file was shared to ("" if kept
	// private), Channels all of them.
	Channel        string
	Channels       []string
	ThreadTS       string
	InitialComment string
	Blocks         json.RawMessage
	CompletedAt    time.Time
}

type file struct {
	File
	uploaded  bool
	completed bool
	created   time.Time
}

func (f *file) jsonLocked() map[string]any {
	return map[string]any{
		"id":          f.ID,
		"name":        f.Name,
		"title":       f.Title,
		"size":        len(f.Content),
		"mimetype":    mime.TypeByExtension(extension(f.Name)),
		"filetype":    strings.TrimPrefix(extension(f.Name), "."),
		"created":     f.created.Unix(),
		"is_external": false,
	}
}

func extension(name string) string {
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		return name[i:]
	}
	return ""
}

// Files returns the files whose upload was completed, in completion order.
func (s *Server) Files() []File {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]File, 0, len(s.shared))
	for _, id := range s.shared {
		f := s.files[id].File
		f.Content = bytes.Clone(f.Content)
		f.Channels = slices.Clone(f.Channels)
		f.Blocks = bytes.Clone(f.Blocks)
		out = append(out, f)
	}
	return out
}

func (s *Server) filesGetUploadURLExternal(req *request) (map[string]any, *apiError) {
	p := req.p
	name := p.Get("filename")
	if name == "" {
		return nil, errf("invalid_arguments", "missing required field: filename")
	}
	lengthArg := p.Get("length")
	if lengthArg == "" {
		return nil, errf("invalid_arguments", "missing required field: length")
	}
	length, err := strconv.Atoi(lengthArg)
	switch {
	case err != nil || length < 0:
		return nil, errf("invalid_arguments", "length must be an integer")
	case length == 0:
		return nil, errf("missing_argument")
	}
	if utf8.RuneCountInString(p.Get("alt_txt")) > maxAltText {
		return nil, errf("alt_txt_too_large")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.newIDLocked("F")
	s.files[id] = &file{
		File:    File{ID: id, Name: name, Length: length, AltText: p.Get("alt_txt"), SnippetType: p.Get("snippet_type")},
		created: time.Now(),
	}
	return map[string]any{
		"upload_url": s.srv.URL + uploadPath + id,
		"file_id":    id,
	}, nil
}

// serveUpload takes the bytes POSTed to an upload URL, raw or as a
// multipart form (slack-go sends a multipart form with a "file" part).
func (s *Server) serveUpload(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimPrefix(r.URL.Path, uploadPath)
	call := Call{Method: "upload", HTTPMethod: r.Method, Time: time.Now(), Params: url.Values{"file_id": {id}}}
	call.ContentType, _, _ = mime.ParseMediaType(r.Header.Get("Content-Type"))
	call.Token, call.TokenSource = requestToken(r, url.Values{}, false)

	resp := s.intercept(r.Context(), "upload")
	if resp == nil {
		resp = s.upload(r, id, &call)
	}
	s.finish(w, call, resp)
}

func (s *Server) upload(r *http.Request, id string, call *Call) *response {
	if r.Method != http.MethodPost && r.Method != http.MethodPut {
		return textResponse(http.StatusMethodNotAllowed, "method not allowed")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		return textResponse(http.StatusBadRequest, "could not read body")
	}
	content, filename := body, ""
	if mt, mp, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err == nil && mt == "multipart/form-data" {
		content, filename, err = multipartFile(body, mp["boundary"])
		if err != nil {
			return textResponse(http.StatusBadRequest, "invalid multipart body: "+err.Error())
		}
	}
	call.Params.Set("length", strconv.Itoa(len(content)))
	if filename != "" {
		call.Params.Set("filename", filename)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.files[id]
	if f == nil || f.completed {
		return textResponse(http.StatusNotFound, "not found")
	}
	f.Content = bytes.Clone(content)
	f.UploadFilename = filename
	f.uploaded = true
	return textResponse(http.StatusOK, "OK - "+strconv.Itoa(len(content)))
}

func textResponse(status int, body string) *response {
	h := http.Header{}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	return &response{status: status, header: h, body: []byte(body)}
}

// multipartFile returns the first file part of a multipart body (or, with
// no file part, the first part).
func multipartFile(body []byte, boundary string) ([]byte, string, error) {
	if boundary == "" {
		return nil, "", errors.New("no boundary")
	}
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	var first []byte
	seen := false
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, "", err
		}
		data, err := io.ReadAll(part)
		if err != nil {
			return nil, "", err
		}
		if part.FileName() != "" {
			return data, part.FileName(), nil
		}
		if !seen {
			first, seen = data, true
		}
	}
	if !seen {
		return nil, "", errors.New("no parts")
	}
	return first, "", nil
}

// readMultipartForm returns the value fields of a multipart form.
func readMultipartForm(body []byte, boundary string) (url.Values, error) {
	if boundary == "" {
		return nil, errors.New("no boundary")
	}
	form, err := multipart.NewReader(bytes.NewReader(body), boundary).ReadForm(maxBody)
	if err != nil {
		return nil, err
	}
	defer func() { _ = form.RemoveAll() }()
	return url.Values(form.Value), nil
}

func (s *Server) filesCompleteUploadExternal(req *request) (map[string]any, *apiError) {
	p := req.p
	var summaries []struct {
		ID    string `json:"id"`
		Title string `json:"title"`
	}
	if err := json.Unmarshal([]byte(p.Get("files")), &summaries); err != nil || len(summaries) == 0 {
		return nil, errf("invalid_arguments", "files must be a non-empty JSON array of {id, title}")
	}
	var channels []string
	if c := p.Get("channel_id"); c != "" {
		channels = append(channels, normChannel(c))
	}
	for c := range strings.SplitSeq(p.Get("channels"), ",") {
		if c = normChannel(c); c != "" && !slices.Contains(channels, c) {
			channels = append(channels, c)
		}
	}
	comment := p.Get("initial_comment")
	if utf8.RuneCountInString(comment) > maxTextChars {
		return nil, errf("msg_too_long")
	}
	var blocks json.RawMessage
	if b := p.Get("blocks"); strings.TrimSpace(b) != "" {
		var aerr *apiError
		if blocks, aerr = validateBlocks(b, s.opts.BlockScopedActionIDs); aerr != nil {
			return nil, aerr
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range channels {
		if !s.channelExistsLocked(c) {
			return nil, errf("invalid_channel")
		}
	}
	var ids []string
	for _, sm := range summaries {
		f := s.files[sm.ID]
		if f == nil || !f.uploaded || f.completed || slices.Contains(ids, sm.ID) {
			return nil, errf("file_not_found")
		}
		ids = append(ids, sm.ID)
	}
	threadTS := ""
	if tts := p.Get("thread_ts"); tts != "" && len(channels) > 0 {
		var aerr *apiError
		if threadTS, aerr = s.resolveThreadLocked(channels[0], tts); aerr != nil {
			return nil, aerr
		}
	}

	now := time.Now()
	var out []map[string]any
	for _, sm := range summaries {
		f := s.files[sm.ID]
		f.completed = true
		f.Title = cmp(sm.Title, f.Name)
		f.Channels = slices.Clone(channels)
		if len(channels) > 0 {
			f.Channel = channels[0]
			f.ThreadTS = threadTS
		}
		f.InitialComment = comment
		f.Blocks = blocks
		f.CompletedAt = now
		s.shared = append(s.shared, f.ID)
		out = append(out, map[string]any{"id": f.ID, "title": f.Title})
	}
	// Sharing posts one message per channel carrying the files and the
	// initial comment (in the thread, for the first channel, if asked).
	for i, c := range channels {
		m := &message{
			channel: c,
			ts:      s.nextTSLocked(),
			content: content{text: comment, blocks: blocks},
			fileIDs: slices.Clone(ids),
			params:  withoutToken(p),
			posted:  now,
		}
		if i == 0 {
			m.threadTS = threadTS
		}
		s.messages[c] = append(s.messages[c], m)
	}
	return map[string]any{"files": out}, nil
}
