/* metrics.c - counters for GET /metrics (Prometheus text format 0.0.4).
 * One mutex: updates are a few per request or per token, far below the
 * cost of a decode step. */
#include <stdio.h>
#include <string.h>

#include "server/server.h"

#define MAX_SERIES 64

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct { char endpoint[40]; int status; uint64_t n; } series[MAX_SERIES];
static int n_series;
static uint64_t prompt_tokens, cached_tokens, gen_tokens, n_cancelled;
static double prompt_s, gen_s, last_cancel_s = -1;
static uint64_t steps, step_seqs, multi_steps;
/* throughput: generated tokens in 1-second buckets over the last 5 s */
static uint64_t bucket[6];
static long bucket_sec[6];

void metrics_request(const char *endpoint, int status)
{
    pthread_mutex_lock(&mu);
    int i;
    for (i = 0; i < n_series; i++)
        if (series[i].status == status && !strcmp(series[i].endpoint, endpoint)) break;
    if (i == n_series) {
        if (n_series == MAX_SERIES) i = -1;   /* only fixed routes are counted, never request paths: bounded */
        else {
            snprintf(series[i].endpoint, sizeof series[i].endpoint, "%s", endpoint);
            series[i].status = status;
            n_series++;
        }
    }
    if (i >= 0) series[i].n++;
    pthread_mutex_unlock(&mu);
}

void metrics_tokens(uint64_t prompt, uint64_t cached, uint64_t gen, double t_prompt, double t_gen)
{
    pthread_mutex_lock(&mu);
    prompt_tokens += prompt;
    cached_tokens += cached;
    (void)gen;   /* counted live by metrics_generated */
    if (t_prompt > 0) prompt_s += t_prompt;
    if (t_gen > 0) gen_s += t_gen;
    pthread_mutex_unlock(&mu);
}

void metrics_generated(uint64_t n)
{
    long sec = (long)srv_now();
    pthread_mutex_lock(&mu);
    int b = (int)(sec % 6);
    if (bucket_sec[b] != sec) { bucket_sec[b] = sec; bucket[b] = 0; }
    bucket[b] += n;
    gen_tokens += n;
    pthread_mutex_unlock(&mu);
}

void metrics_step(uint32_t n_seqs, bool multi)
{
    pthread_mutex_lock(&mu);
    steps++;
    step_seqs += n_seqs;
    if (multi) multi_steps++;
    pthread_mutex_unlock(&mu);
}

void metrics_cancel(double latency_s)
{
    pthread_mutex_lock(&mu);
    n_cancelled++;
    last_cancel_s = latency_s;
    pthread_mutex_unlock(&mu);
}

void metrics_client_gone(void)
{
    pthread_mutex_lock(&mu);
    n_cancelled++;
    pthread_mutex_unlock(&mu);
}

void metrics_render(sbuf *b)
{
    long sec = (long)srv_now();
    pthread_mutex_lock(&mu);
    sb_adds(b, "# HELP gemma4_requests_total HTTP requests by route and status.\n# TYPE gemma4_requests_total counter\n");
    for (int i = 0; i < n_series; i++)
        sb_printf(b, "gemma4_requests_total{endpoint=\"%s\",status=\"%d\"} %llu\n", series[i].endpoint, series[i].status,
                  (unsigned long long)series[i].n);
    sb_printf(b, "# HELP gemma4_requests_cancelled_total Requests whose client went away before the end.\n# TYPE gemma4_requests_cancelled_total counter\ngemma4_requests_cancelled_total %llu\n",
              (unsigned long long)n_cancelled);
    sb_printf(b, "# HELP gemma4_prompt_tokens_total Prompt tokens processed (cache hits excluded).\n# TYPE gemma4_prompt_tokens_total counter\ngemma4_prompt_tokens_total %llu\n",
              (unsigned long long)prompt_tokens);
    sb_printf(b, "# HELP gemma4_cached_prompt_tokens_total Prompt tokens reused from a slot's KV cache.\n# TYPE gemma4_cached_prompt_tokens_total counter\ngemma4_cached_prompt_tokens_total %llu\n",
              (unsigned long long)cached_tokens);
    sb_printf(b, "# HELP gemma4_generated_tokens_total Generated tokens.\n# TYPE gemma4_generated_tokens_total counter\ngemma4_generated_tokens_total %llu\n",
              (unsigned long long)gen_tokens);
    sb_printf(b, "# HELP gemma4_prompt_seconds_total Time spent reading prompts (per request, summed).\n# TYPE gemma4_prompt_seconds_total counter\ngemma4_prompt_seconds_total %.6f\n", prompt_s);
    sb_printf(b, "# HELP gemma4_generation_seconds_total Time spent generating (per request, summed).\n# TYPE gemma4_generation_seconds_total counter\ngemma4_generation_seconds_total %.6f\n", gen_s);
    uint64_t recent = 0;
    for (int i = 0; i < 6; i++)
        if (bucket_sec[i] < sec && bucket_sec[i] >= sec - 5) recent += bucket[i];
    sb_printf(b, "# HELP gemma4_generation_tokens_per_second Generated tokens per second, all slots, over the last 5 s.\n# TYPE gemma4_generation_tokens_per_second gauge\ngemma4_generation_tokens_per_second %.3f\n",
              recent / 5.0);
    sb_printf(b, "# HELP gemma4_decode_steps_total Generation steps (one token for each generating slot).\n# TYPE gemma4_decode_steps_total counter\ngemma4_decode_steps_total %llu\n", (unsigned long long)steps);
    sb_printf(b, "# HELP gemma4_decode_step_sequences_total Sequences carried by those steps (divided by the steps: the mean batch).\n# TYPE gemma4_decode_step_sequences_total counter\ngemma4_decode_step_sequences_total %llu\n", (unsigned long long)step_seqs);
    sb_printf(b, "# HELP gemma4_decode_multi_steps_total Steps run as one g4_decode_multi call (continuous batching).\n# TYPE gemma4_decode_multi_steps_total counter\ngemma4_decode_multi_steps_total %llu\n", (unsigned long long)multi_steps);
    sb_printf(b, "# HELP gemma4_cancel_latency_seconds Last cancel: client gone noticed -> slot freed (-1: none yet).\n# TYPE gemma4_cancel_latency_seconds gauge\ngemma4_cancel_latency_seconds %.6f\n", last_cancel_s);
    pthread_mutex_unlock(&mu);
}
