package store

import (
	"net/url"
	"strings"
)

// RedactURL hides the password of a URL, in the userinfo or in a
// password= query parameter. Text that does not parse as a URL is kept
// only up to any '@', since whatever precedes it may be a secret.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		if i := strings.LastIndex(raw, "@"); i >= 0 {
			return "(redacted)" + raw[i:]
		}
		return raw
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}
