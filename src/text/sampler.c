/*
 * sampler.c - logits -> token, the chain documented in gemma4.h:
 *
 *   logit bias -> suppressed tokens (-inf) -> repetition / presence /
 *   frequency penalties -> (temperature 0: argmax) -> top-k -> softmax with
 *   temperature -> top-p -> min-p -> seeded draw.
 *
 * Determinism: candidates are ordered by (logit descending, id ascending),
 * a total order, so every selection below gives the same result whatever
 * algorithm produced it; sums are in double; the generator is xoshiro256**
 * seeded through splitmix64.  Same seed + same logits + same history =>
 * same token, on every machine with IEEE floats and a correct expf.
 *
 * Cost per token for a 262,144-entry vocabulary: one copy of the row, one
 * pass for bias / suppression / penalties (touching only those tokens),
 * then for top-k a heap selection O(n log k); without top-k, top-p widens
 * a partial selection (256, 4096, then all) until the prefix reaches p, so
 * a full sort happens only for very flat distributions.
 */
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemma4.h"
#include "kernels/rng.h"
#include "model/model.h"

#define G4_SAMPLER_MAX_LAST_N (1 << 20)

struct g4_sampler {
    g4_sampler_params p;    /* bias pointers replaced by our copies */
    uint32_t n_vocab;
    int32_t *bias_tok;
    float   *bias_val;
    size_t   n_bias;
    const int32_t *suppress; /* the model's, valid while it is loaded */
    uint32_t n_suppress;

    int32_t *hist;          /* ring of the last penalty_last_n accepted tokens */
    uint32_t hist_n, hist_pos;
    int32_t *hist_tmp;      /* sorted copy, to group repeats */

    g4_rng   rng;

    float   *work;          /* n_vocab adjusted logits */
    int32_t *ids;           /* candidate ids */
    int32_t *sel;           /* partial selection buffer */
    float   *w;             /* unnormalized weights of the kept candidates */

    /* the last sample's kept candidates, for g4_sampler_candidates */
    int32_t *kept;          /* points into ids or sel */
    size_t   n_kept;
    bool     kept_sorted;
    double   kept_sum;
    float   *cand_p;        /* normalized probabilities, filled lazily */
    bool     cand_ready;
    int32_t  greedy_tok;
};

/* ------------------------------------------------------------------ PRNG */

static void rng_seed(g4_sampler *s)
{
    g4_rng_seed(&s->rng, s->p.seed);
}

/* Uniform in [0, 1) with 53 random bits. */
static double rng_uniform(g4_sampler *s) { return (double)(g4_rng_next(&s->rng) >> 11) * 0x1.0p-53; }

/* ------------------------------------------------------------ parameters */

g4_sampler_params g4_sampler_default_params(void)
{
    g4_sampler_params p;
    memset(&p, 0, sizeof p);
    p.temperature = 1.0f;
    p.top_k = 64;
    p.top_p = 0.95f;
    p.min_p = 0.0f;
    p.repeat_penalty = 1.0f;
    p.presence_penalty = 0.0f;
    p.frequency_penalty = 0.0f;
    p.penalty_last_n = 64;
    p.seed = 0xC0FFEE;
    return p;
}

static g4_status fail(char *err, size_t errlen, g4_status st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static g4_status fail(char *err, size_t errlen, g4_status st, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return st;
}

void g4_sampler_free(g4_sampler *s)
{
    if (!s) return;
    free(s->bias_tok);
    free(s->bias_val);
    free(s->hist);
    free(s->hist_tmp);
    free(s->work);
    free(s->ids);
    free(s->sel);
    free(s->w);
    free(s->cand_p);
    free(s);
}

g4_status g4_sampler_new(const g4_model *model, const g4_sampler_params *params,
                         g4_sampler **out, char *err, size_t errlen)
{
    if (!out) return fail(err, errlen, G4_ERR_INVALID, "sampler: out is NULL");
    *out = NULL;
    if (!model || model->n_vocab == 0) return fail(err, errlen, G4_ERR_INVALID, "sampler: no model (or a model without vocabulary)");
    g4_sampler_params p = params ? *params : g4_sampler_default_params();
    if (!isfinite(p.temperature) || p.temperature < 0)
        return fail(err, errlen, G4_ERR_INVALID, "sampler: temperature %g must be a finite number >= 0", (double)p.temperature);
    if (!isfinite(p.top_p) || p.top_p < 0)
        return fail(err, errlen, G4_ERR_INVALID, "sampler: top_p %g must be a finite number >= 0 (>= 1 = off)", (double)p.top_p);
    if (!isfinite(p.min_p) || p.min_p > 1)
        return fail(err, errlen, G4_ERR_INVALID, "sampler: min_p %g must be a finite number <= 1 (<= 0 = off)", (double)p.min_p);
    if (!isfinite(p.repeat_penalty) || p.repeat_penalty <= 0)
        return fail(err, errlen, G4_ERR_INVALID, "sampler: repeat_penalty %g must be a finite number > 0 (1 = off)", (double)p.repeat_penalty);
    if (!isfinite(p.presence_penalty))
        return fail(err, errlen, G4_ERR_INVALID, "sampler: presence_penalty %g must be finite", (double)p.presence_penalty);
    if (!isfinite(p.frequency_penalty))
        return fail(err, errlen, G4_ERR_INVALID, "sampler: frequency_penalty %g must be finite", (double)p.frequency_penalty);
    if (p.penalty_last_n < 0 || p.penalty_last_n > G4_SAMPLER_MAX_LAST_N)
        return fail(err, errlen, G4_ERR_INVALID, "sampler: penalty_last_n %d must be in [0, %d] (0 = no penalties)",
                    (int)p.penalty_last_n, G4_SAMPLER_MAX_LAST_N);
    if (p.n_bias && (!p.bias_tokens || !p.bias_values))
        return fail(err, errlen, G4_ERR_INVALID, "sampler: n_bias is %zu but bias_tokens or bias_values is NULL", p.n_bias);
    uint32_t V = model->n_vocab;
    for (size_t i = 0; i < p.n_bias; i++) {
        if (p.bias_tokens[i] < 0 || (uint32_t)p.bias_tokens[i] >= V)
            return fail(err, errlen, G4_ERR_INVALID, "sampler: logit bias %zu: token %d is outside the vocabulary (0..%u)", i,
                        (int)p.bias_tokens[i], V - 1);
        float b = p.bias_values[i];
        if (isnan(b) || b == INFINITY)
            return fail(err, errlen, G4_ERR_INVALID, "sampler: logit bias %zu (token %d): value %g must be finite or -inf", i,
                        (int)p.bias_tokens[i], (double)b);
    }

    g4_sampler *s = calloc(1, sizeof *s);
    if (!s) return fail(err, errlen, G4_ERR_NOMEM, "sampler: out of memory");
    s->p = p;
    s->n_vocab = V;
    s->n_bias = p.n_bias;
    s->suppress = model->suppress_tokens;
    s->n_suppress = model->n_suppress;
    size_t nb = p.n_bias ? p.n_bias : 1, nh = p.penalty_last_n ? (size_t)p.penalty_last_n : 1;
    s->bias_tok = malloc(nb * sizeof *s->bias_tok);
    s->bias_val = malloc(nb * sizeof *s->bias_val);
    s->hist = malloc(nh * sizeof *s->hist);
    s->hist_tmp = malloc(nh * sizeof *s->hist_tmp);
    s->work = malloc((size_t)V * sizeof *s->work);
    s->ids = malloc((size_t)V * sizeof *s->ids);
    s->sel = malloc((size_t)V * sizeof *s->sel);
    s->w = malloc((size_t)V * sizeof *s->w);
    s->cand_p = malloc((size_t)V * sizeof *s->cand_p);
    if (!s->bias_tok || !s->bias_val || !s->hist || !s->hist_tmp || !s->work || !s->ids || !s->sel || !s->w || !s->cand_p) {
        g4_sampler_free(s);
        return fail(err, errlen, G4_ERR_NOMEM, "sampler: out of memory (vocabulary of %u)", V);
    }
    if (p.n_bias) {
        memcpy(s->bias_tok, p.bias_tokens, p.n_bias * sizeof *s->bias_tok);
        memcpy(s->bias_val, p.bias_values, p.n_bias * sizeof *s->bias_val);
    }
    s->p.bias_tokens = s->bias_tok;
    s->p.bias_values = s->bias_val;
    rng_seed(s);
    *out = s;
    return G4_OK;
}

void g4_sampler_reset(g4_sampler *s)
{
    if (!s) return;
    s->hist_n = s->hist_pos = 0;
    s->n_kept = 0;
    s->cand_ready = false;
    rng_seed(s);
}

void g4_sampler_accept(g4_sampler *s, int32_t token)
{
    if (!s || token < 0 || (uint32_t)token >= s->n_vocab || s->p.penalty_last_n == 0) return;
    uint32_t cap = (uint32_t)s->p.penalty_last_n;
    s->hist[s->hist_pos] = token;
    s->hist_pos = (s->hist_pos + 1) % cap;
    if (s->hist_n < cap) s->hist_n++;
}

/* ------------------------------------------------------------ selection */

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* a ranks before b: larger logit, then smaller id. */
static inline bool better(const float *v, int32_t a, int32_t b) { return v[a] > v[b] || (v[a] == v[b] && a < b); }

/* Min-heap (by rank: root = worst) sift-down. */
static void sift_down(const float *v, int32_t *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && better(v, h[m], h[l])) m = l;
        if (r < n && better(v, h[m], h[r])) m = r;
        if (m == i) return;
        int32_t t = h[i]; h[i] = h[m]; h[m] = t;
        i = m;
    }
}

/* The m best of ids[0..n) (m <= n) into out[0..m), best first. */
static void select_top(const float *v, const int32_t *ids, size_t n, size_t m, int32_t *out)
{
    if (m == 0) return;
    for (size_t i = 0; i < m; i++) out[i] = ids[i];
    for (size_t i = m / 2; i-- > 0;) sift_down(v, out, m, i);
    for (size_t i = m; i < n; i++) {
        if (better(v, ids[i], out[0])) {
            out[0] = ids[i];
            sift_down(v, out, m, 0);
        }
    }
    /* heap sort: repeatedly move the worst to the end -> best first */
    for (size_t k = m; k > 1; k--) {
        int32_t t = out[0]; out[0] = out[k - 1]; out[k - 1] = t;
        sift_down(v, out, k - 1, 0);
    }
}

/* ------------------------------------------------------------- sampling */

static void apply_penalties(g4_sampler *s, float *v)
{
    const g4_sampler_params *p = &s->p;
    if (s->hist_n == 0 || (p->repeat_penalty == 1.0f && p->presence_penalty == 0.0f && p->frequency_penalty == 0.0f)) return;
    memcpy(s->hist_tmp, s->hist, s->hist_n * sizeof *s->hist);
    qsort(s->hist_tmp, s->hist_n, sizeof *s->hist_tmp, cmp_i32);
    for (uint32_t i = 0; i < s->hist_n;) {
        uint32_t j = i;
        while (j < s->hist_n && s->hist_tmp[j] == s->hist_tmp[i]) j++;
        int32_t t = s->hist_tmp[i];
        float c = (float)(j - i), x = v[t];
        if (p->repeat_penalty != 1.0f) x = x <= 0 ? x * p->repeat_penalty : x / p->repeat_penalty;
        x -= c * p->frequency_penalty + p->presence_penalty;
        v[t] = x;
        i = j;
    }
}

/* Top-p over all n candidates in s->ids (weights in s->w, no top-k):
 * instead of sorting the whole vocabulary, bucket tokens by
 * (max - logit) / T, find the bucket where the cumulative mass crosses the
 * target, and sort only that bucket.  Writes to s->sel the tokens of the
 * earlier buckets (in id order: every one of them is kept), then the
 * crossing bucket best first, with their weights in s->w, and returns how
 * many of them are kept: the earlier buckets and the crossing bucket's
 * prefix that brings the mass to the target. */
#define TP_BUCKETS 4096
#define TP_DMAX 40.0f   /* weights below e^-40 share the last bucket */
static inline int tp_bucket(float x, float vmax, float invt)
{
    float d = (vmax - x) * invt;
    return d >= TP_DMAX ? TP_BUCKETS - 1 : (int)(d * ((TP_BUCKETS - 1) / TP_DMAX));
}

static size_t top_p_buckets(g4_sampler *s, size_t n, float vmax, float invt, double target)
{
    double mass[TP_BUCKETS] = { 0 };
    const float *v = s->work;
    for (size_t i = 0; i < n; i++) mass[tp_bucket(v[s->ids[i]], vmax, invt)] += s->w[i];
    double cum = 0;
    int bc = 0;
    for (; bc < TP_BUCKETS; bc++) {
        if (cum + mass[bc] >= target) break;
        cum += mass[bc];
    }
    if (bc == TP_BUCKETS) bc = TP_BUCKETS - 1;   /* rounding: keep everything */
    /* ids in earlier buckets first, then the crossing bucket (compacted in ids) */
    size_t o = 0, nt = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t t = s->ids[i];
        int b = tp_bucket(v[t], vmax, invt);
        if (b < bc) s->sel[o++] = t;
        else if (b == bc) s->ids[nt++] = t;
    }
    select_top(v, s->ids, nt, nt, s->sel + o);
    size_t total = o + nt;
    cum = 0;
    for (size_t i = 0; i < total; i++) {
        s->w[i] = expf((v[s->sel[i]] - vmax) * invt);
        cum += s->w[i];
        if (i >= o && cum >= target) return i + 1;
    }
    return total;
}

int32_t g4_sampler_sample(g4_sampler *s, const float *logits)
{
    if (!s || !logits) return -1;
    const g4_sampler_params *p = &s->p;
    const uint32_t V = s->n_vocab;
    float *v = s->work;
    memcpy(v, logits, (size_t)V * sizeof *v);
    s->n_kept = 0;
    s->cand_ready = false;
    s->kept_sorted = true;

    for (size_t i = 0; i < s->n_bias; i++) v[s->bias_tok[i]] += s->bias_val[i];
    for (uint32_t i = 0; i < s->n_suppress; i++) v[s->suppress[i]] = -INFINITY;
    apply_penalties(s, v);

    /* candidates: every token with a usable logit (NaN and -inf are out,
     * +inf is clamped so that differences stay finite) */
    size_t n = 0;
    int32_t best = -1;
    float bestv = -INFINITY;
    int32_t *ids = s->ids;
    for (uint32_t i = 0; i < V; i++) {
        float x = v[i];
        if (!(x > -INFINITY)) continue;
        if (x == INFINITY) v[i] = x = FLT_MAX;
        ids[n++] = (int32_t)i;
        if (x > bestv || best < 0) { bestv = x; best = (int32_t)i; }
    }
    if (n == 0) return -1;

    if (p->temperature == 0.0f) {
        s->greedy_tok = best;
        s->kept = &s->greedy_tok;
        s->n_kept = 1;
        s->w[0] = 1.0f;
        s->kept_sum = 1.0;
        return best;
    }

    /* top-k */
    int32_t *kept = s->ids;
    size_t nk = n;
    bool sorted = false;
    if (p->top_k > 0 && (size_t)p->top_k < n) {
        nk = (size_t)p->top_k;
        select_top(v, s->ids, n, nk, s->sel);
        kept = s->sel;
        sorted = true;
    }

    /* softmax with temperature (unnormalized weights relative to the max) */
    const float vmax = v[best], invt = 1.0f / p->temperature;
    double sum = 0;
    for (size_t i = 0; i < nk; i++) {
        float w = expf((v[kept[i]] - vmax) * invt);
        s->w[i] = w;
        sum += w;
    }

    /* top-p: the smallest prefix (best first) whose mass reaches top_p */
    if (p->top_p < 1.0f) {
        const double target = (double)p->top_p * sum;
        if (!sorted) {
            nk = top_p_buckets(s, nk, vmax, invt, target);
            kept = s->sel;   /* not in rank order */
        } else {
            double cum = 0;
            size_t j = 0;
            for (; j < nk; j++) {
                cum += s->w[j];
                if (cum >= target) break;
            }
            nk = j < nk ? j + 1 : nk;
        }
    }

    /* min-p: keep p >= min_p * p_max, i.e. weight >= min_p (the max has 1) */
    if (p->min_p > 0.0f) {
        size_t o = 0;
        for (size_t i = 0; i < nk; i++) {
            if (s->w[i] >= p->min_p) {
                kept[o] = kept[i];
                s->w[o] = s->w[i];
                o++;
            }
        }
        nk = o; /* the max itself (weight 1) always stays */
    }

    sum = 0;
    for (size_t i = 0; i < nk; i++) sum += s->w[i];
    s->kept = kept;
    s->n_kept = nk;
    s->kept_sorted = sorted;   /* else g4_sampler_candidates sorts */
    s->kept_sum = sum;

    const double u = rng_uniform(s) * sum;
    double cum = 0;
    for (size_t i = 0; i < nk; i++) {
        cum += s->w[i];
        if (u < cum) return kept[i];
    }
    return kept[nk - 1];
}

size_t g4_sampler_candidates(g4_sampler *s, const int32_t **tokens, const float **probs)
{
    if (!s || s->n_kept == 0) {
        if (tokens) *tokens = NULL;
        if (probs) *probs = NULL;
        return 0;
    }
    if (!s->cand_ready) {
        if (!s->kept_sorted) {
            /* order by weight = by adjusted logit; ties by id */
            int32_t *dst = s->kept == s->sel ? s->ids : s->sel;
            select_top(s->work, s->kept, s->n_kept, s->n_kept, dst);
            s->kept = dst;
            s->kept_sorted = true;
            float vmax = s->work[dst[0]], invt = 1.0f / s->p.temperature;
            for (size_t i = 0; i < s->n_kept; i++) s->w[i] = expf((s->work[dst[i]] - vmax) * invt);
        }
        for (size_t i = 0; i < s->n_kept; i++) s->cand_p[i] = (float)(s->w[i] / s->kept_sum);
        s->cand_ready = true;
    }
    if (tokens) *tokens = s->kept;
    if (probs) *probs = s->cand_p;
    return s->n_kept;
}
