package notify

import (
	"net/url"
	"strings"

	"github.com/stacksense/heartbeat/pkg/output"
	"github.com/stacksense/heartbeat/pkg/redact"
)

// plainQueryKeys are the URL parameters whose values are settings, never
// secrets, and so are shown by Redact. Every other value is masked: the
// services spell their secrets many ways (token=, key=, apikey=,
// password=, devicekey=, webhook=, …) and a list of those would go stale.
var plainQueryKeys = map[string]bool{
	"scheme": true, "disabletls": true, "disabletlsverification": true, "template": true,
	"priority": true, "encryption": true, "usestarttls": true, "starttls": true, "requirestarttls": true,
	"auth": true, "method": true, "contenttype": true, "color": true, "parsemode": true,
	"usehtml": true, "timeout": true, "format": true, "preview": true, "notification": true,
	"cache": true, "firebase": true, "splitlines": true, "skiptlsverify": true,
}

// Redact returns a channel URL fit to show (notify list, logs, errors):
// the scheme, the host (when it is a host name or address: a host part
// without a dot, like slack://T000/… or pushover://…@USERKEY, is a token
// and is masked), the whole userinfo masked, the path masked ("/xxxxx"),
// query keys with their values masked except plain settings (scheme=http,
// priority=…), the fragment dropped. exec: URLs are shown whole: a path is
// no secret. Control characters are escaped. It is deliberately
// conservative: a person tells channels apart by their names.
func Redact(rawURL string) string {
	if p, ok := strings.CutPrefix(rawURL, "exec:"); ok {
		return "exec:" + output.Escape(p)
	}
	scheme, _, ok := strings.Cut(rawURL, "://")
	if !ok || !validScheme(strings.ToLower(scheme)) {
		// No "scheme://": nothing tells which part is secret.
		if s, _, ok := strings.Cut(rawURL, ":"); ok && validScheme(strings.ToLower(s)) {
			return output.Escape(s) + ":" + redact.Mask
		}
		return redact.Mask
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return output.Escape(scheme) + "://" + redact.Mask
	}
	var b strings.Builder
	b.WriteString(strings.ToLower(scheme))
	b.WriteString("://")
	if u.User != nil {
		b.WriteString(redact.Mask + "@")
	}
	if host := u.Hostname(); host != "" {
		if strings.Contains(host, ".") || strings.Contains(host, ":") || host == "localhost" {
			b.WriteString(u.Host)
		} else {
			b.WriteString(redact.Mask)
			if port := u.Port(); port != "" {
				b.WriteString(":" + port)
			}
		}
	}
	if p := strings.Trim(u.EscapedPath(), "/"); p != "" {
		b.WriteString("/" + redact.Mask)
	}
	if u.RawQuery != "" {
		var pairs []string
		for _, p := range strings.Split(u.RawQuery, "&") {
			k, v, hasValue := strings.Cut(p, "=")
			dk, err := url.QueryUnescape(k)
			switch {
			case err != nil:
				pairs = append(pairs, redact.Mask)
			case !hasValue:
				pairs = append(pairs, k)
			case plainQueryKeys[strings.ToLower(dk)]:
				pairs = append(pairs, k+"="+v)
			default:
				pairs = append(pairs, k+"="+redact.Mask)
			}
		}
		b.WriteString("?" + strings.Join(pairs, "&"))
	}
	return output.Escape(b.String())
}
