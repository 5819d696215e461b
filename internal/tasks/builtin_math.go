package tasks

import (
	"context"
	"math"
	"math/big"
)

// PowArgs are the arguments of "pow". Sleep, in seconds, comes first: with
// it, pow is the classic demo task "time.sleep(2); return x**20".
type PowArgs struct {
	Base  int64   `json:"base" default:"0" doc:"any 64-bit integer"`
	Exp   int64   `json:"exp" default:"0" doc:"at least 0; the result has at most 2^22 bits"`
	Sleep float64 `json:"sleep,omitempty" default:"0" doc:"seconds to sleep first"`
}

func (PowArgs) about() (string, string) {
	return "sleep, then compute base**exp exactly: the classic demo task",
		"a string, base**exp in decimal"
}

// maxPowBits caps the size of a pow result (about 1.26 million decimal
// digits), so that a typo cannot exhaust memory.
const maxPowBits = 1 << 22

// powTask returns base**exp exactly, as a decimal string (a msgpack integer
// could not hold it).
func powTask(ctx context.Context, a PowArgs) (string, error) {
	if a.Exp < 0 {
		return "", BadArgs("field \"exp\": want an integer ≥ 0, got %d", a.Exp)
	}
	if abs := math.Abs(float64(a.Base)); abs > 1 && float64(a.Exp)*math.Log2(abs) > maxPowBits {
		return "", BadArgs("%d**%d has more than %d bits", a.Base, a.Exp, maxPowBits)
	}
	if err := checkSeconds("sleep", a.Sleep); err != nil {
		return "", err
	}
	if err := sleep(ctx, a.Sleep); err != nil {
		return "", err
	}
	return new(big.Int).Exp(big.NewInt(a.Base), big.NewInt(a.Exp), nil).String(), nil
}

// PrimesArgs are the arguments of "primes": count the primes p with
// From ≤ p ≤ N.
type PrimesArgs struct {
	N    int64 `json:"n" default:"0" doc:"the last number to test, at least 0"`
	From int64 `json:"from,omitempty" default:"0" doc:"the first number to test, at least 0"`
}

func (PrimesArgs) about() (string, string) {
	return "count primes by trial division: the CPU-bound benchmark task",
		"an integer, how many primes p satisfy from ≤ p ≤ n"
}

// primesTask counts primes by trial division. It is slow on purpose: it is
// the CPU-bound benchmark task (all the primes below 1,000,000, 78498 of
// them, take a fraction of a second on one core), and must stay comparable
// with the same naive loop in other languages.
func primesTask(ctx context.Context, a PrimesArgs) (int, error) {
	if a.N < 0 || a.From < 0 {
		return 0, BadArgs("fields \"n\" and \"from\": want integers ≥ 0, got n=%d, from=%d", a.N, a.From)
	}
	done := ctx.Done()
	count := 0
	for p := max(a.From, 2); p <= a.N && p > 0; p++ { // p > 0: stop if p++ wraps
		select {
		case <-done:
			return 0, ctx.Err()
		default:
		}
		if isPrime(p, done) {
			count++
		}
	}
	return count, ctx.Err() // isPrime may have given up on the last p
}

// isPrime tests n by trial division. It gives up (with a meaningless
// answer) when done is closed, which matters only for a huge n.
func isPrime(n int64, done <-chan struct{}) bool {
	if n < 2 {
		return false
	}
	if n%2 == 0 {
		return n == 2
	}
	for d := int64(3); d <= n/d; d += 2 { // not d*d <= n, which overflows
		if n%d == 0 {
			return false
		}
		if d&(1<<20-1) == 1 {
			select {
			case <-done:
				return false
			default:
			}
		}
	}
	return true
}

// PiArgs are the arguments of "pi".
type PiArgs struct {
	Digits int `json:"digits" default:"0" doc:"decimals, from 0 to 100000"`
}

func (PiArgs) about() (string, string) {
	return "compute π",
		"a string, π truncated to digits decimals: \"3.14159\" for 5, \"3\" for 0"
}

// maxPiDigits bounds "pi": the series below is quadratic, and 100000
// digits already take seconds.
const maxPiDigits = 100000

// piTask returns π truncated (not rounded) to a.Digits decimals, "3" for 0.
func piTask(ctx context.Context, a PiArgs) (string, error) {
	if a.Digits < 0 || a.Digits > maxPiDigits {
		return "", BadArgs("field \"digits\": want an integer from 0 to %d, got %d", maxPiDigits, a.Digits)
	}
	// Fixed point: the integer x stands for x/10**(digits+guard). Every
	// series term truncates, and the error adds up to less than 25 units per
	// digit computed (2.5 million for 100000 digits). 20 guard digits keep
	// it from reaching the digits we return, unless π went on with a dozen
	// 9s or 0s right there; it has six at most (…999999… at decimal 762).
	const guard = 20
	one := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(a.Digits+guard)), nil)
	// Machin: π = 16·arctan(1/5) − 4·arctan(1/239).
	a5, err := arctanInv(ctx, 5, one)
	if err != nil {
		return "", err
	}
	a239, err := arctanInv(ctx, 239, one)
	if err != nil {
		return "", err
	}
	pi := a5.Mul(a5, big.NewInt(16))
	pi.Sub(pi, a239.Mul(a239, big.NewInt(4)))
	pi.Quo(pi, new(big.Int).Exp(big.NewInt(10), big.NewInt(guard), nil)) // truncates
	s := pi.String()                                                     // "314159…", digits+1 long
	if a.Digits == 0 {
		return s, nil
	}
	return s[:1] + "." + s[1:], nil
}

// arctanInv returns arctan(1/x) in the fixed point of one, by the series
// 1/x − 1/(3x³) + 1/(5x⁵) − …
func arctanInv(ctx context.Context, x int64, one *big.Int) (*big.Int, error) {
	power := new(big.Int).Quo(one, big.NewInt(x)) // one/x^(2k+1)
	sum := new(big.Int).Set(power)
	x2 := big.NewInt(x * x)
	term, div := new(big.Int), new(big.Int)
	for k := int64(1); ; k++ {
		if power.Quo(power, x2).Sign() == 0 {
			return sum, nil
		}
		term.Quo(power, div.SetInt64(2*k+1))
		if k%2 == 1 {
			sum.Sub(sum, term)
		} else {
			sum.Add(sum, term)
		}
		if k%128 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
}
