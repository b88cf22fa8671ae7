"""Drives the "longtune" kernel through jupyter_client, as a notebook front end would.

Run with Debian's /usr/bin/python3 and JUPYTER_PATH pointing at a data dir holding the kernelspec.
Prints key=value lines for KernelEndToEndTest; exits non-zero only when the script itself breaks.
"""
import os
import sys
import time

from jupyter_client.manager import KernelManager

TIMEOUT = 30


def say(key, value):
    print(f"{key}={value}".replace("\n", "\\n"), flush=True)


def run(kc, code, timeout=TIMEOUT):
    """Executes code; returns (reply content, [iopub messages of this request])."""
    msg_id = kc.execute(code)
    reply = kc.get_shell_msg(timeout=timeout)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = kc.get_shell_msg(timeout=timeout)
    outputs = []
    while True:
        msg = kc.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return reply["content"], outputs
        outputs.append(msg)


def result_text(outputs):
    for m in outputs:
        if m["msg_type"] == "execute_result":
            return m["content"]["data"].get("text/plain")
    return None


def main():
    started = time.monotonic()
    km = KernelManager(kernel_name="longtune")
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        say("start_seconds", f"{time.monotonic() - started:.3f}")
        say("interrupt_mode", km.kernel_spec.interrupt_mode)

        info = kc.kernel_info(reply=True, timeout=TIMEOUT)["content"]
        say("language", info["language_info"]["name"])
        say("banner_mentions_longtune", "longtune" in info.get("banner", ""))

        t = time.monotonic()
        reply, outputs = run(kc, "1 + 1")
        say("first_cell_seconds", f"{time.monotonic() - t:.3f}")
        say("one_plus_one_status", reply["status"])
        say("one_plus_one", result_text(outputs))

        t = time.monotonic()
        reply, outputs = run(kc, 'System.out.println("printed from a cell");\n"second"')
        say("second_cell_seconds", f"{time.monotonic() - t:.3f}")
        say("stdout", "".join(m["content"]["text"] for m in outputs
                              if m["msg_type"] == "stream" and m["content"]["name"] == "stdout"))

        reply, outputs = run(kc, 'String id = display("shown");\nupdateDisplay(id, "updated");')
        say("display_status", reply["status"])
        say("displayed", [m["content"]["data"].get("text/plain") for m in outputs
                          if m["msg_type"] in ("display_data", "update_display_data")])

        reply, outputs = run(kc, 'throw new IllegalStateException("boom")')
        say("error_status", reply["status"])
        say("error_ename", reply.get("ename"))
        errors = [m["content"] for m in outputs if m["msg_type"] == "error"]
        say("error_traceback_has_boom", bool(errors) and any("boom" in line for line in errors[0]["traceback"]))

        # Shift-Tab: inspect_request on a JDK method call and a toolkit method without its parenthesis
        for key, code in (("inspect_max", "Math.max("), ("inspect_plan", "Plan.of")):
            content = kc.inspect(code, len(code), reply=True, timeout=TIMEOUT)["content"]
            say(key + "_found", content.get("found"))
            say(key, content.get("data", {}).get("text/plain", ""))

        repo = os.environ.get("ROUNDTRIP_MAVEN_REPO")
        if repo:
            reply, outputs = run(kc, f"%mavenRepo here {repo}\n%maven demo:name:2.0\nnames.Name.of()", timeout=120)
            say("maven_status", reply["status"])
            say("maven_result", result_text(outputs) if reply["status"] == "ok" else reply.get("evalue"))

        reply, outputs = run(kc, "%%time\nThread.sleep(20);\n1 + 1")
        say("time_status", reply["status"])
        say("time_result", result_text(outputs))
        say("time_stdout", "".join(m["content"]["text"] for m in outputs
                                   if m["msg_type"] == "stream" and m["content"]["name"] == "stdout"))
        content = kc.complete("%ls", 3, reply=True, timeout=TIMEOUT)["content"]
        say("complete_magic", content.get("matches"))

        # a thread the cell started prints after the cell ended, while the next cell runs: to its own cell
        late = 'new Thread(() -> { try { Thread.sleep(700); } catch (InterruptedException e) { }\n' \
               '    System.out.println("late from a thread"); }).start();\n"started"'
        late_id = kc.execute(late)
        next_id = kc.execute("Thread.sleep(1500);\n\"next\"")
        seen = []  # (parent msg_id, text) of every stream message, whichever cell it belongs to
        next_idle = False
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (next_idle and any("late from a thread" in t for _, t in seen)):
            try:
                m = kc.get_iopub_msg(timeout=0.5)
            except Exception:
                continue
            parent = m["parent_header"].get("msg_id")
            if m["msg_type"] == "stream":
                seen.append((parent, m["content"]["text"]))
            elif m["msg_type"] == "status" and parent == next_id and m["content"]["execution_state"] == "idle":
                next_idle = True
        say("late_next_cell_stdout", "".join(t for p, t in seen if p == next_id))
        say("late_output_to_its_cell", any(p == late_id and "late from a thread" in t for p, t in seen))

        msg_id = kc.execute("while (true) { }")
        time.sleep(1.0)
        t = time.monotonic()
        km.interrupt_kernel()
        reply = kc.get_shell_msg(timeout=TIMEOUT)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = kc.get_shell_msg(timeout=TIMEOUT)
        say("interrupt_seconds", f"{time.monotonic() - t:.3f}")
        say("interrupt_status", reply["content"]["status"])

        reply, outputs = run(kc, '"alive"')
        say("after_interrupt_status", reply["status"])
        say("after_interrupt", result_text(outputs))

        # a training step interrupted half-way leaves the step counter and the memory as a completed step does
        setup = ('var cfg = ModelConfig.parse("tiny", new java.io.ByteArrayInputStream(("{\\"model_type\\": \\"llama\\", '
                 '\\"hidden_size\\": 64, \\"intermediate_size\\": 172, \\"num_hidden_layers\\": 4, \\"num_attention_heads\\": 4, '
                 '\\"num_key_value_heads\\": 2, \\"vocab_size\\": 301, \\"tie_word_embeddings\\": false, '
                 '\\"rms_norm_eps\\": 1e-5, \\"rope_theta\\": 10000.0}").getBytes()), "test");\n'
                 'var dev = new CpuDevice();\n'
                 'var model = new LlamaModel(cfg, dev, Precision.FP32, Checkpointing.DEVICE);\n'
                 'model.initialize(1);\n'
                 'var trainer = new Trainer(model, TrainingConfig.defaults(1000000), Precision.FP32);\n'
                 'var batch = List.of(Batch.ofDocument(new Random(2).ints(1024, 0, 301).toArray()));\n'
                 'trainer.step(batch);\n'
                 'long held = dev.memory().currentTotal();\n'
                 'int done = 1;\n'
                 '"ready " + trainer.step()')
        reply, outputs = run(kc, setup, timeout=120)
        say("train_setup", result_text(outputs) if reply["status"] == "ok" else reply.get("evalue"))
        msg_id = kc.execute("while (true) { trainer.step(batch); done++; }")
        time.sleep(1.5)
        km.interrupt_kernel()
        reply = kc.get_shell_msg(timeout=TIMEOUT)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = kc.get_shell_msg(timeout=TIMEOUT)
        say("train_interrupt_status", reply["content"]["status"])
        reply, outputs = run(kc, '(trainer.step() == done) + " " + (dev.memory().currentTotal() == held) + " " + done')
        # the reply's error, if the cell failed, so that a failure says why (once seen as a bare None, 2026-12-01)
        say("train_after_interrupt", result_text(outputs) if reply["status"] == "ok"
            else f'{reply["status"]} {reply.get("ename")}: {reply.get("evalue")}')
    finally:
        kc.stop_channels()
        t = time.monotonic()
        km.shutdown_kernel(now=False)
        say("shutdown_seconds", f"{time.monotonic() - t:.3f}")
        say("kernel_alive_after_shutdown", km.is_alive())
    return 0


if __name__ == "__main__":
    sys.exit(main())
