package config

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ResolveReadToken returns the token that guards the read side of
// serve-api: --read-token, then HEARTBEAT_READ_TOKEN; "" means open.
func ResolveReadToken(flagToken string, getenv Getenv) string {
	return firstNonEmpty(flagToken, getenv("HEARTBEAT_READ_TOKEN"))
}

// ResolveTrustedProxies returns serve-api's list of reverse proxies whose
// X-Forwarded-For is believed: --trusted-proxies, then
// HEARTBEAT_TRUSTED_PROXIES; "" means none. The CLI parses it.
func ResolveTrustedProxies(flagProxies string, getenv Getenv) string {
	return firstNonEmpty(flagProxies, getenv("HEARTBEAT_TRUSTED_PROXIES"))
}

// ResolveAlertsToken returns the token that guards serve-api's alert
// endpoints: --alerts-token, then --alerts-token-file (trimmed; an empty
// or unreadable file is an error), then HEARTBEAT_ALERTS_TOKEN; "" means
// the endpoints are disabled. The error never contains the token.
func ResolveAlertsToken(flagToken, flagTokenFile string, getenv Getenv) (string, error) {
	if flagToken != "" && flagTokenFile != "" {
		return "", errors.New("--alerts-token and --alerts-token-file are alternatives; give one")
	}
	if flagToken != "" {
		return flagToken, nil
	}
	if flagTokenFile != "" {
		b, err := os.ReadFile(flagTokenFile)
		if err != nil {
			return "", fmt.Errorf("read --alerts-token-file: %w", err)
		}
		tok := strings.TrimSpace(string(b))
		if tok == "" {
			return "", fmt.Errorf("--alerts-token-file %s is empty", flagTokenFile)
		}
		return tok, nil
	}
	return getenv("HEARTBEAT_ALERTS_TOKEN"), nil
}

// Push is where `heartbeat push` sends its heartbeat and as whom.
type Push struct {
	// URL is the API's base URL (scheme, host, optional path prefix).
	URL      string
	ServerID int64
	// Token is the server's API token. Never log it.
	Token string
}

// ResolvePush applies the documented order: --url, then HEARTBEAT_API_URL,
// then the source system's STACKSENSE_API_URL; --server-id (0 means unset),
// then STACKSENSE_SERVER_ID; --token, then --token-file, then
// HEARTBEAT_TOKEN. Every setting is required; a missing or malformed one is
// an error naming where to set it.
func ResolvePush(flagURL string, flagServerID int64, flagToken, flagTokenFile string, getenv Getenv) (Push, error) {
	var p Push
	p.URL = firstNonEmpty(flagURL, getenv("HEARTBEAT_API_URL"), getenv("STACKSENSE_API_URL"))
	if p.URL == "" {
		return Push{}, errors.New("no API URL: set --url, HEARTBEAT_API_URL or STACKSENSE_API_URL")
	}
	if !strings.HasPrefix(p.URL, "http://") && !strings.HasPrefix(p.URL, "https://") {
		return Push{}, fmt.Errorf("API URL %q must start with http:// or https://", p.URL)
	}
	p.ServerID = flagServerID
	if p.ServerID == 0 {
		v := getenv("STACKSENSE_SERVER_ID")
		if v == "" {
			return Push{}, errors.New("no server id: set --server-id or STACKSENSE_SERVER_ID")
		}
		id, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return Push{}, fmt.Errorf("STACKSENSE_SERVER_ID %q is not a server id", v)
		}
		p.ServerID = id
	}
	if p.ServerID <= 0 {
		return Push{}, fmt.Errorf("server id %d must be positive", p.ServerID)
	}
	p.Token = flagToken
	if p.Token == "" && flagTokenFile != "" {
		b, err := os.ReadFile(flagTokenFile)
		if err != nil {
			return Push{}, fmt.Errorf("read --token-file: %w", err)
		}
		p.Token = strings.TrimSpace(string(b))
		if p.Token == "" {
			return Push{}, fmt.Errorf("--token-file %s is empty", flagTokenFile)
		}
	}
	if p.Token == "" {
		p.Token = getenv("HEARTBEAT_TOKEN")
	}
	if p.Token == "" {
		return Push{}, errors.New("no API token: set --token, --token-file or HEARTBEAT_TOKEN (issue one with `heartbeat servers token ID|NAME`)")
	}
	return p, nil
}
