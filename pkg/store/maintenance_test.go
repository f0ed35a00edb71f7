package store

import (
	"errors"
	"testing"
	"time"
)

func TestValidateCron(t *testing.T) {
	for _, expr := range []string{
		"0 3 * * SUN", "0 3 * * 0", "0 3 * * 7", "*/15 * * * *", "0 3 * * MON-FRI", "30 2 1,15 * *",
		"0 0 29 2 *", // leap days only, still fires within five years
		"0 3 L * *", "@daily", "@weekly", " 0 3 * * sun ",
	} {
		if err := ValidateCron(expr); err != nil {
			t.Errorf("ValidateCron(%q) = %v, want accepted", expr, err)
		}
	}
	for _, expr := range []string{
		"", "   ", "0 3 * *", "0 0 3 * * SUN", "0 0 3 * * SUN 2030", "61 * * * *", "0 24 * * *", "0 3 32 * *",
		"0 3 * 13 *", "0 3 * * SUNDAY", "0 0 30 2 *", "0 0 31 4 *", "@fortnightly", "@reboot", "every day", "0 3 * * SUN;rm",
	} {
		if err := ValidateCron(expr); !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidateCron(%q) = %v, want ErrInvalid", expr, err)
		}
	}
}

func TestCronOccurrence(t *testing.T) {
	sunday3 := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		expr string
		d    time.Duration
		now  time.Time
		want time.Time // zero: no occurrence in progress
	}{
		{"at the start", "0 3 * * SUN", time.Hour, sunday3, sunday3},
		{"inside", "0 3 * * SUN", time.Hour, sunday3.Add(59*time.Minute + 59*time.Second), sunday3},
		{"at the end is over", "0 3 * * SUN", time.Hour, sunday3.Add(time.Hour), time.Time{}},
		{"a second before", "0 3 * * SUN", time.Hour, sunday3.Add(-time.Second), time.Time{}},
		{"next day", "0 3 * * SUN", time.Hour, sunday3.Add(24 * time.Hour), time.Time{}},
		{"long window spans days", "0 3 * * SUN", 48 * time.Hour, sunday3.Add(47 * time.Hour), sunday3},
		{"every 15 minutes, latest start", "*/15 * * * *", 10 * time.Minute, sunday3.Add(17 * time.Minute), sunday3.Add(15 * time.Minute)},
		{"every 15 minutes, gap", "*/15 * * * *", 10 * time.Minute, sunday3.Add(27 * time.Minute), time.Time{}},
		{"another zone is read as UTC", "0 3 * * SUN", time.Hour, sunday3.Add(30 * time.Minute).In(time.FixedZone("X", 5*3600)), sunday3},
	}
	for _, tt := range tests {
		got, ok := CronOccurrence(tt.expr, tt.d, tt.now)
		if ok != !tt.want.IsZero() || !got.Equal(tt.want) {
			t.Errorf("%s: CronOccurrence = %v, %v; want %v", tt.name, got, ok, tt.want)
		}
	}
	next, err := CronNext("0 3 * * SUN", sunday3)
	if err != nil || !next.Equal(sunday3.Add(7*24*time.Hour)) {
		t.Errorf("CronNext after an occurrence = %v, %v; want the next Sunday", next, err)
	}
}
