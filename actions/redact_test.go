package actions

import (
	"strings"
	"testing"
)

func TestRedactor(t *testing.T) {
	tests := []struct {
		in     string
		secret []string // must not survive
		keep   []string // must survive
		count  int
	}{
		{`CREATE USER bob IDENTIFIED BY 'hunter2'`, []string{"hunter2"}, []string{"CREATE USER bob IDENTIFIED BY"}, 1},
		{`CREATE USER bob IDENTIFIED WITH sha256_password BY 'p@ss\'word'`, []string{"p@ss", "word'"}, []string{"sha256_password"}, 1},
		{`ALTER USER bob IDENTIFIED WITH plaintext_password BY "dq-secret"`, []string{"dq-secret"}, nil, 1},
		{`SELECT * FROM s3('https://b.s3.amazonaws.com/x.csv', 'AKIAKEYID', 'S3SECRETKEY', 'CSV')`, []string{"AKIAKEYID", "S3SECRETKEY"}, []string{"https://b.s3.amazonaws.com/x.csv", "'CSV'"}, 2},
		{`SELECT * FROM s3('https://b/x.csv', 'CSV', 'a String')`, nil, []string{"'CSV'", "'a String'"}, 0},
		{`SELECT * FROM mysql('db:3306', 'shop', 'orders', 'app', 'mysqlpw')`, []string{"mysqlpw"}, []string{"'app'", "'orders'"}, 1},
		{`SELECT * FROM postgresql('pg:5432', 'db', 't', 'u', 'pgpw', 'public')`, []string{"pgpw"}, []string{"'public'"}, 1},
		{`SELECT * FROM remote('h:9000', db.t, 'u', 'x', 'remotepw')`, []string{"remotepw"}, nil, 1},
		{`SELECT * FROM url('http://alice:urlpw@host/data.csv', CSV)`, []string{"urlpw"}, []string{"alice", "host/data.csv"}, 1},
		{`SELECT * FROM url('http://host/x?user=a&password=qspw&x=1', CSV)`, []string{"qspw"}, []string{"x=1"}, 1},
		{`dsn: postgres://svc:dsnpw@db:5432/app?sslmode=require`, []string{"dsnpw"}, []string{"sslmode=require"}, 1},
		{`host=db user=app password=kvpw dbname=x`, []string{"kvpw"}, []string{"dbname=x"}, 1},
		{`url('http://h/x', CSV, 'a String', headers('Authorization'='Bearer tok123'))`, []string{"tok123"}, []string{"headers("}, 1},
		{`Authorization: Basic dXNlcjpwYXNz`, []string{"dXNlcjpwYXNz"}, nil, 1},
		{`X-ClickHouse-Key: chkey`, []string{"chkey"}, nil, 1},
		{`CREATE TABLE t ENGINE = S3(x, secret_access_key = 'nc-secret')`, []string{"nc-secret"}, nil, 1},
		{`SET PASSWORD 'setpw'`, []string{"setpw"}, nil, 1},
		{`addauth digest admin:zkpw`, []string{"zkpw"}, []string{"admin"}, 1},
		{`SELECT count() FROM system.tables WHERE name = 'password_history'`, nil, []string{"password_history"}, 0},
		{`nothing secret here`, nil, []string{"nothing secret here"}, 0},
	}
	for _, tt := range tests {
		var r Redactor
		out := r.String(tt.in)
		for _, s := range tt.secret {
			if strings.Contains(out, s) {
				t.Errorf("%s\n  → %s\n  still holds %q", tt.in, out, s)
			}
		}
		for _, s := range tt.keep {
			if !strings.Contains(out, s) {
				t.Errorf("%s\n  → %s\n  lost %q", tt.in, out, s)
			}
		}
		if r.Count != tt.count {
			t.Errorf("%s\n  → %s\n  count %d, want %d", tt.in, out, r.Count, tt.count)
		}
		// Redacting again changes nothing and counts nothing.
		var r2 Redactor
		if again := r2.String(out); again != out || r2.Count != 0 {
			t.Errorf("not idempotent: %s → %s (%d)", out, again, r2.Count)
		}
	}
}
