/* handlers_misc.c - GET /v1/models, POST /tokenize, POST /detokenize. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server.h"

static json_t *model_obj(srv_server *s)
{
    return json_pack("{s:s,s:s,s:I,s:s}", "id", s->model_id, "object", "model", "created", (json_int_t)s->created, "owned_by", "gemma4.c");
}

void h_models(http_conn *c, const char *id)
{
    srv_server *s = g_srv;
    if (id) {
        if (strcmp(id, s->model_id)) {
            srv_err e;
            memset(&e, 0, sizeof e);
            srv_fail(&e, 404, "model_not_found", "model", "the model '%.100s' does not exist (this server has '%s')", id, s->model_id);
            http_reply_error(c, &e);
            return;
        }
        http_reply_json(c, 200, model_obj(s));
        return;
    }
    http_reply_json(c, 200, json_pack("{s:s,s:[o]}", "object", "list", "data", model_obj(s)));
}

void h_tokenize(http_conn *c, json_t *body)
{
    srv_server *s = g_srv;
    srv_err e;
    memset(&e, 0, sizeof e);
    const char *text = NULL;
    bool p, add_special = false, parse_special = true, with_pieces = false;
    if (!jr_string(body, "content", &p, &text, &e)) goto fail;
    if (!p) { srv_fail(&e, 400, "missing_required_parameter", "content", "content: required"); goto fail; }
    if (!jr_bool(body, "add_special", NULL, &add_special, &e)) goto fail;
    if (!jr_bool(body, "parse_special", NULL, &parse_special, &e)) goto fail;
    if (!jr_bool(body, "with_pieces", NULL, &with_pieces, &e)) goto fail;
    size_t len = json_string_length(json_object_get(body, "content"));
    if (memchr(text, 0, len)) { srv_fail(&e, 400, "invalid_value", "content", "content: contains a NUL character"); goto fail; }
    int32_t *ids = malloc((len + 2) * sizeof *ids);
    if (!ids) { srv_fail(&e, 500, "internal_error", NULL, "out of memory"); goto fail; }
    size_t n = 0;
    char err[256];
    if (g4_tokenize(s->model, text, len, add_special, parse_special, ids, len + 2, &n, err, sizeof err) != G4_OK) {
        free(ids);
        srv_fail(&e, 400, "invalid_value", "content", "content: %s", err);
        goto fail;
    }
    json_t *arr = json_array();
    char buf[512];
    for (size_t i = 0; i < n; i++) {
        if (!with_pieces) { json_array_append_new(arr, json_integer(ids[i])); continue; }
        int64_t k = g4_token_piece(s->model, ids[i], true, buf, sizeof buf);
        if (k < 0 || k > (int64_t)sizeof buf) k = 0;
        json_t *piece = jr_utf8_ok(buf, (size_t)k) ? json_stringn(buf, (size_t)k) : NULL;
        if (!piece) {
            /* a byte token: the bytes as numbers, as llama-server does */
            piece = json_array();
            for (int64_t j = 0; j < k; j++) json_array_append_new(piece, json_integer((unsigned char)buf[j]));
        }
        json_array_append_new(arr, json_pack("{s:i,s:o}", "id", ids[i], "piece", piece));
    }
    free(ids);
    http_reply_json(c, 200, json_pack("{s:o}", "tokens", arr));
    return;
fail:
    http_reply_error(c, &e);
}

void h_detokenize(http_conn *c, json_t *body)
{
    srv_server *s = g_srv;
    srv_err e;
    memset(&e, 0, sizeof e);
    json_t *toks = json_object_get(body, "tokens");
    if (!toks) { srv_fail(&e, 400, "missing_required_parameter", "tokens", "tokens: required"); http_reply_error(c, &e); return; }
    if (!json_is_array(toks)) { srv_fail(&e, 400, "invalid_type", "tokens", "tokens: must be an array of token ids"); http_reply_error(c, &e); return; }
    g4_detok *d = g4_detok_new(s->model, true);
    size_t cap = g4_token_max_bytes(s->model) + 16;
    char *buf = malloc(cap);
    sbuf out = { 0 };
    if (!d || !buf) { srv_fail(&e, 500, "internal_error", NULL, "out of memory"); goto done; }
    size_t i;
    json_t *v;
    json_array_foreach(toks, i, v) {
        char param[48];
        snprintf(param, sizeof param, "tokens[%zu]", i);
        if (!json_is_integer(v)) { srv_fail(&e, 400, "invalid_type", param, "%s: must be an integer token id", param); goto done; }
        json_int_t id = json_integer_value(v);
        if (id < 0 || id >= (json_int_t)s->n_vocab) { srv_fail(&e, 400, "invalid_value", param, "%s: token id %lld is not in [0, %u)", param, (long long)id, s->n_vocab); goto done; }
        size_t n = 0;
        if (g4_detok_push(d, (int32_t)id, buf, cap, &n) != G4_OK) { srv_fail(&e, 400, "invalid_value", param, "%s: cannot detokenize %lld", param, (long long)id); goto done; }
        sb_add(&out, buf, n);
    }
    size_t n = 0;
    if (g4_detok_flush(d, buf, cap, &n) == G4_OK) sb_add(&out, buf, n);
    if (out.oom) { srv_fail(&e, 500, "internal_error", NULL, "out of memory"); goto done; }
    json_t *str = json_stringn(out.p ? out.p : "", out.n);
    if (!str) { srv_fail(&e, 500, "internal_error", NULL, "detokenized text is not UTF-8"); goto done; }
    http_reply_json(c, 200, json_pack("{s:o}", "content", str));
done:
    if (e.status) http_reply_error(c, &e);
    sb_free(&out);
    free(buf);
    g4_detok_free(d);
}
