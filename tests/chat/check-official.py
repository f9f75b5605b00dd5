#!/usr/bin/env python3
"""check-official.py - optional developer check (not part of `make test`).

Renders every conversation in tests/chat/ with Google's OFFICIAL Jinja chat
template (the large-model one, used by 12B/26B-A4B/31B) and compares it byte
for byte with the hand-written NN-name.expected file and, when --gemma4 is
given, with the output of `gemma4 render`.

  python3 tests/chat/check-official.py \
      --template /path/to/gemma4-large.jinja [--gemma4 build/gemma4] [--random N]

--random N also renders N random conversations (roles, part lists, thought
spans, Unicode white space, nested arguments, schemas, flags) both ways and
compares them.

Needs python3-jinja2 (Debian) or `pip install jinja2`.  The template is run
the way Hugging Face transformers runs chat templates (sandboxed
environment, trim_blocks, lstrip_blocks, raise_exception), with bos_token
"<bos>".  As vLLM and llama.cpp do, tool-call `arguments` given as JSON
strings are parsed into objects before rendering (the template itself
raises on strings).

Known, documented departure: a role:"tool" message whose content is a JSON
object makes the official template raise (Jinja's `sequence` test accepts a
dict and the part loop then fails); gemma4.c renders it in the template's
own mapping form.  Such cases are reported as "template raises (expected)".
Exit status: 0 when every comparison that can be made matches.
"""
import argparse
import glob
import json
import os
import shlex
import subprocess
import sys

import jinja2
import jinja2.sandbox


def load_template(path):
    def raise_exception(msg):
        raise jinja2.exceptions.TemplateError(msg)

    env = jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                                       extensions=["jinja2.ext.loopcontrols"])
    env.globals["raise_exception"] = raise_exception
    with open(path, encoding="utf-8") as f:
        return env.from_string(f.read())


def parse_string_arguments(messages):
    for m in messages:
        for tc in m.get("tool_calls") or []:
            fn = tc.get("function") or {}
            if isinstance(fn.get("arguments"), str):
                fn["arguments"] = json.loads(fn["arguments"])
    return messages


# ---------------------------------------------------------------- random mode
def random_conversation(rng):
    """A random conversation and tool list inside what gemma4.c accepts (no
    object tool results: the template raises on those)."""
    words = ["hi", " pad ", "\u3000wide\u00a0", "x<|channel>secret<channel|>y", "stray<channel|>z", "\n\nq\n",
             "", " ", "A<|channel>open", "caf\u00e9", "tab\there"]
    keys = ["a", "A", "b", "B", "city", "Units", "zeta", "_x"]

    def value(d=0):
        k = rng.randrange(9 if d < 3 else 6)
        return [lambda: None, lambda: True, lambda: False, lambda: rng.randrange(-5, 100),
                lambda: rng.choice([0.5, 1e16, 3.25, -2.0, 1e-7, 100.0]), lambda: rng.choice(words),
                lambda: [value(d + 1) for _ in range(rng.randrange(3))],
                lambda: {rng.choice(keys): value(d + 1) for _ in range(rng.randrange(3))},
                lambda: {rng.choice(keys): value(d + 1) for _ in range(rng.randrange(4))}][k]()

    def parts():
        out = []
        for _ in range(rng.randrange(4)):
            t = rng.choice(["text", "text", "image", "image_url", "audio", "input_audio", "video"])
            out.append({"type": t, "text": rng.choice(words)} if t == "text" else {"type": t})
        return out

    def content():
        return rng.choice([rng.choice(words), parts(), None, rng.choice(words)])

    def schema(d=0):
        t = rng.choice(["string", "integer", "number", "boolean", "array", "object", ["string", "null"]])
        s = {"type": t}
        if rng.random() < 0.5:
            s["description"] = rng.choice(words)
        if t == "string" and rng.random() < 0.5:
            s["enum"] = [rng.choice(words) for _ in range(rng.randrange(3))]
        if rng.random() < 0.2:
            s["nullable"] = True
        if rng.random() < 0.2:
            s["format"] = "x"
        if t == "array" and d < 3 and rng.random() < 0.8:
            s["items"] = schema(d + 1)
            if rng.random() < 0.3:
                s["items"]["additionalProperties"] = False
        if t == "object" and d < 3:
            if rng.random() < 0.7:
                s["properties"] = {rng.choice(keys): schema(d + 1) for _ in range(rng.randrange(3))}
            else:
                s["additionalProperties"] = rng.choice([False, {"type": "string"}])
            if rng.random() < 0.5:
                s["required"] = [rng.choice(keys)]
        return s

    tools = None
    if rng.random() < 0.5:
        tools = []
        for i in range(rng.randrange(3)):
            fn = {"name": f"fn{i}"}
            if rng.random() < 0.8:
                fn["description"] = rng.choice(words)
            if rng.random() < 0.8:
                fn["parameters"] = {"type": "object", "properties": {rng.choice(keys): schema() for _ in range(3)}}
                if rng.random() < 0.5:
                    fn["parameters"]["required"] = [rng.choice(keys)]
            tools.append({"type": "function", "function": fn})
    msgs = []
    ids = []
    for _ in range(rng.randrange(1, 8)):
        role = rng.choice(["system", "developer", "user", "user", "assistant", "assistant", "tool", "tool"])
        m = {"role": role}
        if rng.random() < 0.9:
            m["content"] = content()
        if role == "assistant":
            if rng.random() < 0.4:
                m[rng.choice(["reasoning", "reasoning_content"])] = rng.choice(words)
            if rng.random() < 0.5:
                m["tool_calls"] = []
                for j in range(rng.randrange(3)):
                    tc = {"type": "function", "function": {"name": f"fn{j}", "arguments": {rng.choice(keys): value() for _ in range(rng.randrange(3))}}}
                    if rng.random() < 0.3:
                        tc["function"]["arguments"] = json.dumps(tc["function"]["arguments"])
                    if rng.random() < 0.7:
                        tc["id"] = f"id{j}"
                        ids.append(tc["id"])
                    m["tool_calls"].append(tc)
        if role == "tool":
            if rng.random() < 0.7 and ids:
                m["tool_call_id"] = rng.choice(ids + ["nope"])
            if rng.random() < 0.3:
                m["name"] = rng.choice(["named", ""])
            m["content"] = rng.choice([rng.choice(words), parts(), None, 7, 2.5, True])
        msgs.append(m)
    flags = [f for f in ["--think", "--no-generation-prompt", "--preserve-thinking"] if rng.random() < 0.4]
    return msgs, tools, flags


def random_mode(tpl, gemma4, n, seed):
    import random
    import tempfile
    rng = random.Random(seed)
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(n):
            msgs, tools, flags = random_conversation(rng)
            mp, tp = os.path.join(tmp, "m.json"), os.path.join(tmp, "t.json")
            with open(mp, "w", encoding="utf-8") as f:
                json.dump(msgs, f, ensure_ascii=False)
            cmd = [gemma4, "render", "--messages", mp] + flags
            if tools is not None:
                with open(tp, "w", encoding="utf-8") as f:
                    json.dump(tools, f, ensure_ascii=False)
                cmd += ["--tools", tp]
            ours = subprocess.run(cmd, capture_output=True)
            try:
                official = tpl.render(messages=parse_string_arguments(json.loads(json.dumps(msgs))), tools=tools,
                                      bos_token="<bos>", enable_thinking="--think" in flags,
                                      preserve_thinking="--preserve-thinking" in flags,
                                      add_generation_prompt="--no-generation-prompt" not in flags)
            except Exception as e:  # noqa: BLE001
                official = f"RAISES {type(e).__name__}: {e}"
            if ours.returncode != 0 or ours.stdout.decode("utf-8") != official:
                bad += 1
                if bad <= 5:
                    print(f"random #{i} differs ({' '.join(flags)}):\n  messages: {json.dumps(msgs)}\n  tools: {json.dumps(tools)}"
                          f"\n  official: {official!r}\n  gemma4:   {ours.stdout.decode('utf-8', 'replace')!r} {ours.stderr.decode().strip()}")
    print(f"{n} random conversations (seed {seed}), {bad} mismatches")
    return bad


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--template", required=True)
    ap.add_argument("--gemma4", help="path of the gemma4 binary, to compare its `render` output too")
    ap.add_argument("--cases", default=here)
    ap.add_argument("--random", type=int, default=0, metavar="N",
                    help="also compare N random conversations (needs --gemma4)")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    tpl = load_template(a.template)
    if a.random and not a.gemma4:
        ap.error("--random needs --gemma4")
    bad = 0
    files = sorted(glob.glob(os.path.join(a.cases, "*.messages.json")))
    for mpath in files:
        base = mpath[: -len(".messages.json")]
        name = os.path.basename(base)
        with open(mpath, encoding="utf-8") as f:
            messages = json.load(f)
        tools = None
        if os.path.exists(base + ".tools.json"):
            with open(base + ".tools.json", encoding="utf-8") as f:
                tools = json.load(f)
        args = []
        if os.path.exists(base + ".args"):
            with open(base + ".args", encoding="utf-8") as f:
                args = shlex.split(f.read())
        with open(base + ".expected", "rb") as f:
            expected = f.read().decode("utf-8")
        think = "--think" in args
        try:
            official = tpl.render(messages=parse_string_arguments(messages), tools=tools, bos_token="<bos>",
                                  enable_thinking=think, preserve_thinking="--preserve-thinking" in args,
                                  add_generation_prompt="--no-generation-prompt" not in args)
        except Exception as e:  # noqa: BLE001 - report whatever the template raises
            official = None
            err = f"{type(e).__name__}: {e}"
        line = [f"{name:32s}"]
        if official is None:
            line.append(f"template raises ({err})")
            if "tool-result-object" not in name:
                bad += 1
        elif official == expected:
            line.append("official == expected")
        else:
            bad += 1
            line.append("official != expected")
            i = next((k for k in range(min(len(official), len(expected))) if official[k] != expected[k]),
                     min(len(official), len(expected)))
            line.append(f"\n    first difference at {i}:\n    official: {official[max(0, i - 40):i + 60]!r}"
                        f"\n    expected: {expected[max(0, i - 40):i + 60]!r}")
        if a.gemma4:
            cmd = [a.gemma4, "render", "--messages", mpath] + args
            if tools is not None:
                cmd += ["--tools", base + ".tools.json"]
            r = subprocess.run(cmd, capture_output=True)
            ours = r.stdout.decode("utf-8", "replace")
            if r.returncode != 0:
                bad += 1
                line.append(f"; gemma4 render failed: {r.stderr.decode().strip()}")
            elif ours == expected:
                line.append("; gemma4 == expected")
            else:
                bad += 1
                line.append("; gemma4 != expected")
        print(" ".join(line))
    print(f"{len(files)} conversations, {bad} mismatches")
    if a.random:
        bad += random_mode(tpl, a.gemma4, a.random, a.seed)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
