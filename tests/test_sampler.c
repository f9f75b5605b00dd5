/* test_sampler.c - the sampler chain (src/text/sampler.c) against values
 * computed by hand or by a plain reference (full sort, double sums) here.
 *
 * The sampler needs a model only for n_vocab and the suppressed tokens, so
 * the tests build a bare struct g4_model with just those fields. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gemma4.h"
#include "model/model.h"
#include "testutil.h"

static struct g4_model fake_model(uint32_t n_vocab, int32_t *suppress, uint32_t n_suppress)
{
    struct g4_model m;
    memset(&m, 0, sizeof m);
    m.n_vocab = n_vocab;
    m.suppress_tokens = suppress;
    m.n_suppress = n_suppress;
    return m;
}

static g4_sampler *mk(const struct g4_model *m, const g4_sampler_params *p)
{
    char err[256] = "";
    g4_sampler *s = NULL;
    g4_status st = g4_sampler_new(m, p, &s, err, sizeof err);
    CHECKF(st == G4_OK && s, "g4_sampler_new: %s", err);
    return s;
}

static g4_sampler_params plain(float temp)
{
    g4_sampler_params p = g4_sampler_default_params();
    p.temperature = temp;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    return p;
}

static uint64_t lcg = 12345;
static float frand(void)   /* deterministic, in [-4, 4) */
{
    lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((lcg >> 40) & 0xFFFFFF) / (float)(1 << 24) * 8.0f - 4.0f;
}

static const float *g_sort_v;
static int cmp_desc(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    float vx = g_sort_v[x], vy = g_sort_v[y];
    if (vx != vy) return vx > vy ? -1 : 1;
    return (x > y) - (x < y);
}

static bool in_set(const int32_t *set, size_t n, int32_t t)
{
    for (size_t i = 0; i < n; i++)
        if (set[i] == t) return true;
    return false;
}

static void test_defaults(void)
{
    g4_sampler_params p = g4_sampler_default_params();
    CHECK(p.temperature == 1.0f && p.top_k == 64 && fabsf(p.top_p - 0.95f) < 1e-7f && p.min_p == 0.0f);
    CHECK(p.repeat_penalty == 1.0f && p.presence_penalty == 0.0f && p.frequency_penalty == 0.0f);
    CHECK(p.penalty_last_n == 64 && p.seed == 0xC0FFEE && p.n_bias == 0);
}

static void test_greedy(void)
{
    enum { V = 1000 };
    struct g4_model m = fake_model(V, NULL, 0);
    float *l = malloc(V * sizeof *l);
    g4_sampler_params p = g4_sampler_default_params();
    p.temperature = 0;
    g4_sampler *s = mk(&m, &p);
    for (int rep = 0; rep < 20; rep++) {
        int32_t am = 0;
        for (int i = 0; i < V; i++) {
            l[i] = frand();
            if (l[i] > l[am]) am = i;
        }
        int32_t t = g4_sampler_sample(s, l);
        CHECKF(t == am, "greedy %d, argmax %d", t, am);
        const int32_t *ct;
        const float *cp;
        CHECK(g4_sampler_candidates(s, &ct, &cp) == 1 && ct[0] == am && cp[0] == 1.0f);
    }
    /* ties: the lower id */
    for (int i = 0; i < V; i++) l[i] = 0;
    l[700] = l[300] = 5;
    CHECK(g4_sampler_sample(s, l) == 300);
    g4_sampler_free(s);
    free(l);
}

static void test_top_k(void)
{
    enum { V = 500 };
    struct g4_model m = fake_model(V, NULL, 0);
    float l[V];
    int32_t ref[V];
    for (int i = 0; i < V; i++) { l[i] = frand(); ref[i] = i; }
    g_sort_v = l;
    qsort(ref, V, sizeof ref[0], cmp_desc);
    for (int k = 1; k <= 40; k += 13) {
        g4_sampler_params p = plain(1.0f);
        p.top_k = k;
        g4_sampler *s = mk(&m, &p);
        bool only = true;
        for (int d = 0; d < 300; d++) {
            int32_t t = g4_sampler_sample(s, l);
            if (!in_set(ref, (size_t)k, t)) only = false;
        }
        CHECKF(only, "top-k %d: a token outside the k best was drawn", k);
        const int32_t *ct;
        const float *cp;
        size_t n = g4_sampler_candidates(s, &ct, &cp);
        CHECKF(n == (size_t)k, "top-k %d kept %zu", k, n);
        bool same = n == (size_t)k;
        double sum = 0, z = 0;
        for (int i = 0; i < k; i++) z += exp((double)l[ref[i]] - l[ref[0]]);
        for (size_t i = 0; i < n && same; i++) {
            if (ct[i] != ref[i]) same = false;
            double want = exp((double)l[ref[i]] - l[ref[0]]) / z;
            if (fabs(cp[i] - want) > 1e-5) same = false;
            sum += cp[i];
        }
        CHECKF(same && fabs(sum - 1) < 1e-5, "top-k %d: kept set/probabilities differ from the reference", k);
        g4_sampler_free(s);
    }
    /* k >= vocabulary: everything kept */
    g4_sampler_params p = plain(1.0f);
    p.top_k = 10 * V;
    g4_sampler *s = mk(&m, &p);
    g4_sampler_sample(s, l);
    CHECK(g4_sampler_candidates(s, NULL, NULL) == V);
    g4_sampler_free(s);
}

static void test_top_p_small(void)
{
    /* probabilities 0.5, 0.25, 0.15, 0.10 at temperature 1 */
    struct g4_model m = fake_model(4, NULL, 0);
    const float l[4] = { logf(0.15f), logf(0.5f), logf(0.10f), logf(0.25f) };
    const struct { float p; size_t n; } cases[] = {
        { 0.0f, 1 }, { 0.3f, 1 }, { 0.49f, 1 }, { 0.51f, 2 }, { 0.74f, 2 }, { 0.76f, 3 }, { 0.89f, 3 }, { 0.91f, 4 }, { 0.999f, 4 },
    };
    const int32_t order[4] = { 1, 3, 0, 2 };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (int withk = 0; withk < 2; withk++) {
            g4_sampler_params p = plain(1.0f);
            p.top_p = cases[c].p;
            p.top_k = withk ? 3 : 0;
            size_t want = cases[c].n;
            if (withk) { /* top-p sees the top-3 renormalized: 0.556, 0.833, 1 */
                const double cum3[3] = { 0.5 / 0.9, 0.75 / 0.9, 1.0 };
                want = 1;
                while (want < 3 && cum3[want - 1] < cases[c].p) want++;
            }
            g4_sampler *s = mk(&m, &p);
            g4_sampler_sample(s, l);
            const int32_t *ct;
            const float *cp;
            size_t n = g4_sampler_candidates(s, &ct, &cp);
            bool ok = n == want;
            double z = 0;
            const double pr[4] = { 0.15, 0.5, 0.10, 0.25 };
            for (size_t i = 0; i < want; i++) z += pr[order[i]];
            for (size_t i = 0; i < n && ok; i++)
                if (ct[i] != order[i] || fabs(cp[i] - pr[order[i]] / z) > 1e-5) ok = false;
            CHECKF(ok, "top-p %.3f (top-k %d): kept %zu, want %zu", (double)cases[c].p, p.top_k, n, want);
            g4_sampler_free(s);
        }
    }
}

/* Large vocabulary, no top-k: the widening partial selection must give
 * exactly the prefix a full sort gives. */
static void test_top_p_large(void)
{
    enum { V = 262144 };
    struct g4_model m = fake_model(V, NULL, 0);
    float *l = malloc(V * sizeof *l);
    int32_t *ref = malloc(V * sizeof *ref);
    const float temps[] = { 1.0f, 0.3f, 4.0f };
    const float tps[] = { 0.5f, 0.95f, 0.9f };
    for (int c = 0; c < 3; c++) {
        for (int i = 0; i < V; i++) { l[i] = frand() * (c == 1 ? 3.0f : 1.0f); ref[i] = i; }
        g_sort_v = l;
        qsort(ref, V, sizeof ref[0], cmp_desc);
        double z = 0;
        for (int i = 0; i < V; i++) z += exp(((double)l[i] - l[ref[0]]) / temps[c]);
        double cum = 0;
        size_t want = 0;
        while (want < V) {
            cum += exp(((double)l[ref[want]] - l[ref[0]]) / temps[c]);
            want++;
            if (cum >= tps[c] * z) break;
        }
        g4_sampler_params p = plain(temps[c]);
        p.top_p = tps[c];
        g4_sampler *s = mk(&m, &p);
        int32_t t = g4_sampler_sample(s, l);
        const int32_t *ct;
        const float *cp;
        size_t n = g4_sampler_candidates(s, &ct, &cp);
        /* float vs double sums may move the boundary by one token at most */
        bool ok = n + 1 >= want && n <= want + 1 && in_set(ct, n, t);
        for (size_t i = 0; i < n && i < want && ok; i++)
            if (ct[i] != ref[i]) ok = false;
        CHECKF(ok, "top-p %.2f T %.1f over %d tokens: kept %zu, reference %zu", (double)tps[c], (double)temps[c], V, n, want);
        g4_sampler_free(s);
    }
    free(l);
    free(ref);
}

static void test_min_p(void)
{
    /* relative probabilities 1, 0.5, 0.2, 0.09, 0.05 */
    struct g4_model m = fake_model(5, NULL, 0);
    const float l[5] = { logf(0.05f), logf(0.2f), logf(1.0f), logf(0.09f), logf(0.5f) };
    const struct { float mp; size_t n; } cases[] = { { 0.1f, 3 }, { 0.04f, 5 }, { 0.06f, 4 }, { 0.6f, 1 }, { 1.0f, 1 }, { 0.45f, 2 } };
    const int32_t order[5] = { 2, 4, 1, 3, 0 };
    const double rel[5] = { 0.05, 0.2, 1.0, 0.09, 0.5 };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        g4_sampler_params p = plain(1.0f);
        p.min_p = cases[c].mp;
        g4_sampler *s = mk(&m, &p);
        bool ok = true;
        for (int d = 0; d < 200; d++)
            if (!in_set(order, cases[c].n, g4_sampler_sample(s, l))) ok = false;
        const int32_t *ct;
        const float *cp;
        size_t n = g4_sampler_candidates(s, &ct, &cp);
        double z = 0;
        for (size_t i = 0; i < cases[c].n; i++) z += rel[order[i]];
        ok = ok && n == cases[c].n;
        for (size_t i = 0; i < n && ok; i++)
            if (ct[i] != order[i] || fabs(cp[i] - rel[order[i]] / z) > 1e-5) ok = false;
        CHECKF(ok, "min-p %.2f: kept %zu, want %zu", (double)cases[c].mp, n, cases[c].n);
        g4_sampler_free(s);
    }
}

/* Adjusted logit of each token, read back through the candidates'
 * probabilities at temperature 1: log(p_i / p_ref) + l_ref. */
static void adjusted(g4_sampler *s, const float *l, int V, int ref_tok, double *out)
{
    g4_sampler_sample(s, l);
    const int32_t *ct;
    const float *cp;
    size_t n = g4_sampler_candidates(s, &ct, &cp);
    double pref = 0;
    for (size_t i = 0; i < n; i++)
        if (ct[i] == ref_tok) pref = cp[i];
    for (int i = 0; i < V; i++) out[i] = -INFINITY;
    for (size_t i = 0; i < n; i++) out[ct[i]] = log(cp[i] / pref) + l[ref_tok];
}

static void test_penalties(void)
{
    enum { V = 8 };
    struct g4_model m = fake_model(V, NULL, 0);
    const float l[V] = { 2.0f, -2.0f, 1.0f, 0.5f, -1.0f, 3.0f, 0.0f, 0.25f };
    g4_sampler_params p = plain(1.0f);
    p.repeat_penalty = 2.0f;
    p.presence_penalty = 0.5f;
    p.frequency_penalty = 0.25f;
    g4_sampler *s = mk(&m, &p);
    const int32_t hist[] = { 0, 1, 0, 5, 0, 6 };
    for (size_t i = 0; i < 6; i++) g4_sampler_accept(s, hist[i]);
    double a[V];
    adjusted(s, l, V, 2, a);
    /* by hand: token 0 seen 3x: 2/2 - 3*0.25 - 0.5 = -0.25; token 1 once:
     * -2*2 - 0.25 - 0.5 = -4.75; token 5 once: 3/2 - 0.75 = 0.75; token 6
     * once, logit 0 (<= 0: multiplied): 0 - 0.75 = -0.75; others as given */
    const double want[V] = { -0.25, -4.75, 1.0, 0.5, -1.0, 0.75, -0.75, 0.25 };
    for (int i = 0; i < V; i++) CHECKF(fabs(a[i] - want[i]) < 1e-4, "penalties: token %d: %g, want %g", i, a[i], want[i]);

    /* the window: penalty_last_n = 2 sees only the last two (0, 6) */
    p.penalty_last_n = 2;
    g4_sampler *s2 = mk(&m, &p);
    for (size_t i = 0; i < 6; i++) g4_sampler_accept(s2, hist[i]);
    adjusted(s2, l, V, 2, a);
    const double want2[V] = { 2.0 / 2 - 0.25 - 0.5, -2.0, 1.0, 0.5, -1.0, 3.0, -0.75, 0.25 };
    for (int i = 0; i < V; i++) CHECKF(fabs(a[i] - want2[i]) < 1e-4, "last_n 2: token %d: %g, want %g", i, a[i], want2[i]);
    /* reset clears the history: no penalty at all */
    g4_sampler_reset(s2);
    adjusted(s2, l, V, 2, a);
    for (int i = 0; i < V; i++) CHECKF(fabs(a[i] - l[i]) < 1e-4, "after reset: token %d: %g, want %g", i, a[i], (double)l[i]);
    /* penalty_last_n = 0: penalties off */
    p.penalty_last_n = 0;
    g4_sampler *s3 = mk(&m, &p);
    for (size_t i = 0; i < 6; i++) g4_sampler_accept(s3, hist[i]);
    adjusted(s3, l, V, 2, a);
    for (int i = 0; i < V; i++) CHECKF(fabs(a[i] - l[i]) < 1e-4, "last_n 0: token %d: %g, want %g", i, a[i], (double)l[i]);
    /* a logit bias is added before the penalties: token 3 +1.5 -> 2.0 */
    const int32_t bt[] = { 3, 3 };
    const float bv[] = { 1.0f, 0.5f };
    p = plain(1.0f);
    p.bias_tokens = bt;
    p.bias_values = bv;
    p.n_bias = 2;
    p.repeat_penalty = 4.0f;
    g4_sampler *s4 = mk(&m, &p);
    g4_sampler_accept(s4, 3);
    adjusted(s4, l, V, 2, a);
    CHECKF(fabs(a[3] - 0.5) < 1e-4, "bias then penalty: %g, want (0.5+1.5)/4 = 0.5", a[3]);
    g4_sampler_free(s);
    g4_sampler_free(s2);
    g4_sampler_free(s3);
    g4_sampler_free(s4);
}

static void test_distribution(void)
{
    struct g4_model m = fake_model(4, NULL, 0);
    const float l[4] = { 1.0f, 0.5f, 0.0f, -0.5f };
    const float T = 0.7f;
    double pr[4], z = 0;
    for (int i = 0; i < 4; i++) z += pr[i] = exp(l[i] / T);
    for (int i = 0; i < 4; i++) pr[i] /= z;
    g4_sampler_params p = plain(T);
    p.seed = 42;
    g4_sampler *s = mk(&m, &p);
    enum { N = 20000 };
    int cnt[4] = { 0 };
    for (int d = 0; d < N; d++) {
        int32_t t = g4_sampler_sample(s, l);
        if (t >= 0 && t < 4) cnt[t]++;
    }
    double chi2 = 0;
    for (int i = 0; i < 4; i++) chi2 += (cnt[i] - N * pr[i]) * (cnt[i] - N * pr[i]) / (N * pr[i]);
    /* 3 degrees of freedom: P(chi2 > 16.27) = 0.001 */
    CHECKF(chi2 < 16.27 && cnt[0] + cnt[1] + cnt[2] + cnt[3] == N, "chi2 %.2f: %d %d %d %d vs %.0f %.0f %.0f %.0f", chi2, cnt[0], cnt[1],
           cnt[2], cnt[3], N * pr[0], N * pr[1], N * pr[2], N * pr[3]);
    g4_sampler_free(s);

    /* default chain over a small vocabulary with default top-k/top-p */
    enum { V = 300 };
    struct g4_model mv = fake_model(V, NULL, 0);
    float lv[V];
    for (int i = 0; i < V; i++) lv[i] = frand();
    g4_sampler *sd = mk(&mv, NULL);
    const int32_t *ct;
    const float *cp;
    g4_sampler_sample(sd, lv);
    size_t n = g4_sampler_candidates(sd, &ct, &cp);
    CHECKF(n >= 1 && n <= 64, "defaults: %zu candidates", n);
    g4_sampler_free(sd);
}

static void draws(const struct g4_model *m, uint64_t seed, const float *l, int32_t *out, int n)
{
    g4_sampler_params p = g4_sampler_default_params();
    p.seed = seed;
    p.repeat_penalty = 1.1f;
    g4_sampler *s = mk(m, &p);
    for (int i = 0; i < n; i++) {
        out[i] = g4_sampler_sample(s, l);
        g4_sampler_accept(s, out[i]);
    }
    /* reset restarts the generator and forgets the history */
    g4_sampler_reset(s);
    bool same = true;
    for (int i = 0; i < n; i++) {
        int32_t t = g4_sampler_sample(s, l);
        g4_sampler_accept(s, t);
        if (t != out[i]) same = false;
    }
    CHECKF(same, "reset: the sequence did not restart");
    g4_sampler_free(s);
}

static void test_reproducible(void)
{
    enum { V = 2000, N = 300 };
    struct g4_model m = fake_model(V, NULL, 0);
    float *l = malloc(V * sizeof *l);
    for (int i = 0; i < V; i++) l[i] = frand() * 0.3f;
    int32_t a[N], b[N], c[N];
    draws(&m, 7, l, a, N);
    draws(&m, 7, l, b, N);
    draws(&m, 8, l, c, N);
    CHECK(memcmp(a, b, sizeof a) == 0);
    int diff = 0;
    for (int i = 0; i < N; i++) diff += a[i] != c[i];
    CHECKF(diff > N / 2, "seeds 7 and 8 agree on %d of %d draws", N - diff, N);
    free(l);
}

static void test_suppress_and_bias(void)
{
    enum { V = 50 };
    int32_t sup[] = { 3, 40 };
    struct g4_model m = fake_model(V, sup, 2);
    float l[V];
    for (int i = 0; i < V; i++) l[i] = frand() * 0.1f;
    l[3] = 100.0f;   /* the engine writes -inf; the sampler must not rely on it */
    l[40] = 50.0f;
    l[7] = 1.0f;
    const int32_t bt[] = { 7 };
    const float bv[] = { -INFINITY };
    for (int mode = 0; mode < 2; mode++) {
        g4_sampler_params p = mode ? plain(0) : plain(1.5f);
        p.bias_tokens = bt;
        p.bias_values = bv;
        p.n_bias = 1;
        g4_sampler *s = mk(&m, &p);
        bool ok = true;
        for (int d = 0; d < 2000; d++) {
            int32_t t = g4_sampler_sample(s, l);
            g4_sampler_accept(s, t);
            if (t == 3 || t == 40 || t == 7 || t < 0 || t >= V) ok = false;
        }
        CHECKF(ok, "%s: a suppressed or banned token was drawn", mode ? "greedy" : "sampled");
        g4_sampler_free(s);
    }
    /* everything banned: -1 */
    float nl[V];
    for (int i = 0; i < V; i++) nl[i] = -INFINITY;
    nl[3] = 1.0f;   /* only a suppressed one is left */
    g4_sampler *s = mk(&m, NULL);
    CHECK(g4_sampler_sample(s, nl) == -1);
    CHECK(g4_sampler_candidates(s, NULL, NULL) == 0);
    /* NaN logits are never drawn */
    for (int i = 0; i < V; i++) nl[i] = NAN;
    nl[11] = 0.0f;
    CHECK(g4_sampler_sample(s, nl) == 11);
    g4_sampler_free(s);
}

static void bad(const struct g4_model *m, g4_sampler_params p, const char *what, const char *needle)
{
    char err[256] = "";
    g4_sampler *s = (g4_sampler *)1;
    g4_status st = g4_sampler_new(m, &p, &s, err, sizeof err);
    CHECKF(st == G4_ERR_INVALID && s == NULL && strstr(err, needle), "%s: status %d, message '%s'", what, (int)st, err);
}

static void test_bad_params(void)
{
    struct g4_model m = fake_model(10, NULL, 0);
    g4_sampler_params p;
    p = g4_sampler_default_params(); p.temperature = NAN; bad(&m, p, "NaN temperature", "temperature");
    p = g4_sampler_default_params(); p.temperature = -1; bad(&m, p, "negative temperature", "temperature");
    p = g4_sampler_default_params(); p.temperature = INFINITY; bad(&m, p, "inf temperature", "temperature");
    p = g4_sampler_default_params(); p.top_p = -0.1f; bad(&m, p, "negative top_p", "top_p");
    p = g4_sampler_default_params(); p.top_p = NAN; bad(&m, p, "NaN top_p", "top_p");
    p = g4_sampler_default_params(); p.min_p = 1.5f; bad(&m, p, "min_p > 1", "min_p");
    p = g4_sampler_default_params(); p.repeat_penalty = 0; bad(&m, p, "repeat_penalty 0", "repeat_penalty");
    p = g4_sampler_default_params(); p.presence_penalty = NAN; bad(&m, p, "NaN presence", "presence_penalty");
    p = g4_sampler_default_params(); p.frequency_penalty = INFINITY; bad(&m, p, "inf frequency", "frequency_penalty");
    p = g4_sampler_default_params(); p.penalty_last_n = -1; bad(&m, p, "last_n -1", "penalty_last_n");
    int32_t bt[] = { 10 };
    float bv[] = { 1.0f };
    p = g4_sampler_default_params(); p.bias_tokens = bt; p.bias_values = bv; p.n_bias = 1; bad(&m, p, "bias token 10", "outside");
    bt[0] = 2; bv[0] = NAN;
    p = g4_sampler_default_params(); p.bias_tokens = bt; p.bias_values = bv; p.n_bias = 1; bad(&m, p, "NaN bias", "bias");
    p = g4_sampler_default_params(); p.n_bias = 1; bad(&m, p, "NULL bias arrays", "NULL");
    bad(NULL, g4_sampler_default_params(), "no model", "model");
    /* allowed edge values */
    p = g4_sampler_default_params(); p.top_p = 0; p.top_k = -5; p.min_p = -1; p.presence_penalty = -2;
    g4_sampler *s = mk(&m, &p);
    g4_sampler_free(s);
    g4_sampler_free(NULL);
    g4_sampler_accept(NULL, 1);
    g4_sampler_reset(NULL);
    CHECK(g4_sampler_sample(NULL, NULL) == -1);
    CHECK(g4_sampler_candidates(NULL, NULL, NULL) == 0);
}

static void test_speed(void)
{
    enum { V = 262144, N = 100 };
    struct g4_model m = fake_model(V, NULL, 0);
    float *l = malloc(V * sizeof *l);
    for (int i = 0; i < V; i++) l[i] = frand() * 3;
    const char *names[] = { "defaults (top-k 64, top-p 0.95)", "top-p 0.95 only", "temperature 0" };
    for (int c = 0; c < 3; c++) {
        g4_sampler_params p = g4_sampler_default_params();
        if (c == 1) p.top_k = 0;
        if (c == 2) p.temperature = 0;
        p.repeat_penalty = 1.1f;
        g4_sampler *s = mk(&m, &p);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (int i = 0; i < N; i++) g4_sampler_accept(s, g4_sampler_sample(s, l));
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double us = ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / 1e3 / N;
        printf("sample over %d tokens, %s: %.0f us/token\n", V, names[c], us);
        g4_sampler_free(s);
    }
    free(l);
}

int main(void)
{
    test_defaults();
    test_greedy();
    test_top_k();
    test_top_p_small();
    test_top_p_large();
    test_min_p();
    test_penalties();
    test_distribution();
    test_reproducible();
    test_suppress_and_bias();
    test_bad_params();
    test_speed();
    return tu_finish("sampler");
}
