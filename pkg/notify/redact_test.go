package notify

import (
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	for _, c := range []struct {
		raw, want string
		secrets   []string // must not appear in the result
	}{
		{"webhook+https://hooks.example.com/hooks/T0SECRET?x=1", "webhook+https://hooks.example.com/xxxxx?x=xxxxx", []string{"T0SECRET"}},
		{"webhook+http://alice:pa55word@10.0.0.9:8080/in", "webhook+http://xxxxx@10.0.0.9:8080/xxxxx", []string{"alice", "pa55word"}},
		{"webhook+https://hooks.slack.com/services/T000/B000/XXXXSECRET", "webhook+https://hooks.slack.com/xxxxx", []string{"T000", "XXXXSECRET"}},
		{"exec:/usr/local/bin/page-me", "exec:/usr/local/bin/page-me", nil},
		{"exec:/opt/evil\x1b[2J", `exec:/opt/evil\x1b[2J`, []string{"\x1b"}},
		{"slack://hook:WNA3PBYV6-F20DUQND3RQ-Webc4MAvoacrpPakR8phF0zi@webhook", "slack://xxxxx@xxxxx", []string{"WNA3PBYV6", "Webc4MAvoacrpPakR8phF0zi"}},
		{"slack://xoxb:123456789012-1234567890123-4kX7SECRET@C01234567?color=good", "slack://xxxxx@xxxxx?color=good", []string{"4kX7SECRET", "C01234567"}},
		{"slack://T00000000/B00000000/XXXXXXXXSECRET", "slack://xxxxx/xxxxx", []string{"T00000000", "XXXXXXXXSECRET"}},
		{"discord://tokenSECRET@123456789012", "discord://xxxxx@xxxxx", []string{"tokenSECRET", "123456789012"}},
		{"teams://11111111-4444@22222222/3333/4444/V2SECRET?host=contoso.webhook.office.com", "teams://xxxxx@xxxxx/xxxxx?host=xxxxx", []string{"V2SECRET", "contoso"}},
		{"telegram://110201543:AAHdqSECRET@telegram?chats=@heartbeat,-1001", "telegram://xxxxx@xxxxx?chats=xxxxx", []string{"AAHdqSECRET", "110201543"}},
		{"ntfy://ntfy.sh/secret-topic-name?scheme=https&priority=high", "ntfy://ntfy.sh/xxxxx?scheme=https&priority=high", []string{"secret-topic-name"}},
		{"ntfy://user:pw123@127.0.0.1:8080/alerts?scheme=http", "ntfy://xxxxx@127.0.0.1:8080/xxxxx?scheme=http", []string{"pw123", "user"}},
		{"gotify://gotify.example.com/AppTokenSECRET", "gotify://gotify.example.com/xxxxx", []string{"AppTokenSECRET"}},
		{"pushover://shoutrrr:apiTokenSECRET@userKeySECRET/?devices=phone", "pushover://xxxxx@xxxxx?devices=xxxxx", []string{"apiTokenSECRET", "userKeySECRET"}},
		{"matrix://bot:matrixPASS@matrix.example.com/?rooms=!room:example.com", "matrix://xxxxx@matrix.example.com?rooms=xxxxx", []string{"matrixPASS", "!room"}},
		{"smtp://alerts:mailPASS@mail.example.com:587/?from=a@example.com&to=b@example.com&encryption=ExplicitTLS", "smtp://xxxxx@mail.example.com:587?from=xxxxx&to=xxxxx&encryption=ExplicitTLS", []string{"mailPASS"}},
		{"generic+https://example.com/api/webhook/SECRET?token=abc123&template=json", "generic+https://example.com/xxxxx?token=xxxxx&template=json", []string{"SECRET", "abc123"}},
		{"generic+https://example.com/hook?key=k1&password=p1&apikey=a1", "generic+https://example.com/xxxxx?key=xxxxx&password=xxxxx&apikey=xxxxx", []string{"k1", "p1", "a1"}},
		{"mattermost://chat.example.com/hookSECRET?disabletls=yes", "mattermost://chat.example.com/xxxxx?disabletls=yes", []string{"hookSECRET"}},
		{"bark://:deviceKEY@api.day.app", "bark://xxxxx@api.day.app", []string{"deviceKEY"}},
		{"ifttt://webhookIDSECRET/?events=down", "ifttt://xxxxx?events=xxxxx", []string{"webhookIDSECRET"}},
		{"slack://SECRET%zz@x", "slack://xxxxx", []string{"SECRET"}},
		{"no scheme SECRET", "xxxxx", []string{"SECRET"}},
		{"weird:SECRET", "weird:xxxxx", []string{"SECRET"}},
		{"webhook+https://example.com/a#fragSECRET", "webhook+https://example.com/xxxxx", []string{"fragSECRET"}},
	} {
		got := Redact(c.raw)
		if got != c.want {
			t.Errorf("Redact(%q) = %q, want %q", c.raw, got, c.want)
		}
		for _, s := range c.secrets {
			if strings.Contains(got, s) {
				t.Errorf("Redact(%q) = %q shows %q", c.raw, got, s)
			}
		}
	}
}
