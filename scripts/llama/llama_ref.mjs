#!/usr/bin/env node
// llama.cpp as a second engine for minigpt's tests, through node-llama-cpp's
// prebuilt library (@node-llama-cpp/linux-x64: libllama + libggml, CPU only).
// Nothing is downloaded or compiled: getLlama({build: "never"}) uses the
// prebuilt binary or fails.
//
//   node llama_ref.mjs info       MODEL
//   node llama_ref.mjs tokenize   MODEL (--text S | --text-file F)      ids as llama-perplexity tokenizes (BOS if the vocab adds it)
//   node llama_ref.mjs logits     MODEL --ids "1 2 3" [--all] [--out F.npy]
//   node llama_ref.mjs greedy     MODEL --ids "1 2 3" -n N               argmax continuation
//   node llama_ref.mjs perplexity MODEL (--text-file F | --ids-file F) [-c N] [--chunks N]
//   node llama_ref.mjs kl         MODEL --base FILE [--chunks N]
//       KL divergence against a log-prob file in llama-perplexity's
//       --kl-divergence-base format (minigpt perplexity --save-logits writes the
//       same), computed from this engine's logits as llama-perplexity's
//       --kl-divergence computes it (base log-probs above -16 only).
//   node llama_ref.mjs serve
//       Many requests in one process: each line of stdin is a JSON array of the
//       arguments above (["logits", MODEL, "--ids", "1 2"]); each answer is one line,
//       {"result": ...} or {"error": "..."}. Starting node and loading the library
//       takes ~2.5 s, the tests' requests mostly a fraction of that.
//
// Common options: --threads N (default 1), --kv f32|f16 (KV cache type; f32
// default here for logit comparisons, f16 is llama-perplexity's default).
// Output: one JSON object on stdout (last line). Logits are the raw values
// llama_get_logits returns, read through LlamaContextSequence.controlledEvaluate
// with generateNext.logits (a Map token -> logit per position).
//
// perplexity follows llama-perplexity's default protocol (tools/perplexity/
// perplexity.cpp, perplexity()): n_chunk = floor(n_tokens / c); each chunk from
// an empty cache, its first token replaced by BOS when the vocab adds BOS;
// logits at positions c/2 .. c-2 score tokens c/2+1 .. c-1; NLL = log(sum_i
// exp(l_i - top)) + top - l_target, the sum taken by the library (see targetNlls); error = PPL * sqrt((mean(NLL^2) - mean^2) / (count - 1)).
import fs from "node:fs";
import readline from "node:readline";
import {getLlama, LlamaLogLevel} from "node-llama-cpp";

function parseArgs(argv) {
    const [cmd, model, ...rest] = argv;
    const opts = {cmd, model};
    for (let i = 0; i < rest.length; i++) {
        const a = rest[i];
        if (a === "--all") opts.all = true;
        else if (a.startsWith("-")) opts[a.replace(/^-+/, "")] = rest[++i];
        else throw new Error(`unexpected argument ${a}`);
    }
    if (!cmd || !model) throw new Error("usage: llama_ref.mjs COMMAND MODEL [options] (see the header of this file)");
    return opts;
}

function parseIds(s) {
    return s.trim().split(/[\s,]+/).filter((x) => x.length).map((x) => {
        const v = Number(x);
        if (!Number.isInteger(v) || v < 0) throw new Error(`bad token id "${x}"`);
        return v;
    });
}

// NumPy .npy v1.0, little-endian float32.
function writeNpy(path, data, shape) {
    let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(", ")}${shape.length === 1 ? "," : ""}), }`;
    const total = 10 + header.length + 1;
    header += " ".repeat((64 - (total % 64)) % 64) + "\n";
    const head = Buffer.alloc(10);
    head.write("\x93NUMPY", 0, "latin1");
    head[6] = 1; head[7] = 0;
    head.writeUInt16LE(header.length, 8);
    fs.writeFileSync(path, Buffer.concat([head, Buffer.from(header, "latin1"), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]));
}

// Map token -> logit (as controlledEvaluate returns it) -> dense Float32Array.
function dense(map, nVocab) {
    const out = new Float32Array(nVocab);
    out.fill(-Infinity);
    for (const [tok, v] of map) out[tok] = v;
    return out;
}

function argmax(logits) {
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
    return best;
}

class Engine {
    static async open(llama, opts) {
        const e = new Engine();
        e.llama = llama;
        e.model = await e.llama.loadModel({modelPath: opts.model, gpuLayers: 0});
        e.threads = Number(opts.threads ?? 1);
        e.kv = (opts.kv ?? "f32").toUpperCase();
        e.nVocab = 0;  // llama_vocab_n_tokens, learned from the first logits (one entry per token)
        return e;
    }

    // A sequence that fills its context exactly makes node-llama-cpp shift the
    // context before the last token (its logits change), so one cell is kept spare.
    async context(n_tokens) {
        const size = Math.max(n_tokens + 1, 32);
        if (this.ctx && this.ctxSize >= size) return this.seq;
        if (this.ctx) await this.ctx.dispose();
        this.ctx = await this.model.createContext({
            contextSize: size, batchSize: size, threads: this.threads, flashAttention: false,
            experimentalKvCacheKeyType: this.kv, experimentalKvCacheValueType: this.kv, sequences: 1,
        });
        this.ctxSize = size;
        this.seq = this.ctx.getSequence();
        return this.seq;
    }

    // Logits (dense) of positions `from`..ids.length-1 of a fresh evaluation of ids.
    async evaluate(ids, from = 0) {
        const seq = await this.context(ids.length);
        await seq.clearHistory();
        const input = ids.map((t, i) => (i >= from ? [t, {generateNext: {logits: true}}] : t));
        const out = await seq.controlledEvaluate(input);
        if (!this.nVocab) this.nVocab = out[from].next.logits.size;
        const rows = [];
        for (let i = from; i < ids.length; i++) rows.push(dense(out[i].next.logits, this.nVocab));
        return rows;
    }

    // NLL of targets[k] given the logits of position from + k (k < targets.length), from a
    // fresh evaluation of ids. The engine returns, per position, the target's logit, the
    // top logit and sum_i exp(logit_i - top) (float sum, computed in the library), so the
    // whole vocabulary never crosses into JavaScript.
    async targetNlls(ids, from, targets) {
        const seq = await this.context(ids.length);
        await seq.clearHistory();
        const input = ids.map((t, i) => (i >= from && i - from < targets.length
            ? [t, {generateNext: {logits: {filter: {tokens: [targets[i - from]], includeTop: 1}}, totalLogitWeight: true}}]
            : t));
        const out = await seq.controlledEvaluate(input);
        const nlls = [];
        for (let k = 0; k < targets.length; k++) {
            const next = out[from + k].next;
            const top = next.logits.entries().next().value[1];
            nlls.push(Math.log(next.totalLogitWeight) + top - next.logits.get(targets[k]));
        }
        return nlls;
    }

    tokenizeDocument(text) {
        const ids = this.model.tokenize(text, false);
        if (this.model.tokens.shouldPrependBosToken) ids.unshift(this.model.tokens.bos);
        return ids;
    }
}

// The --kl-divergence-base file: "_logits_", int32 n_ctx, n_vocab, n_chunk,
// int32 tokens[n_chunk * n_ctx], then per chunk (n_ctx - 1 - n_ctx/2) rows of
// nv = 2*((n_vocab+1)/2) + 4 uint16: float scale, float min_log_prob, q[n_vocab].
async function klDivergence(e, path, maxChunks) {
    const buf = fs.readFileSync(path);
    if (buf.toString("latin1", 0, 8) !== "_logits_") throw new Error(`${path}: not a log-prob file`);
    const nCtx = buf.readInt32LE(8), nVocab = buf.readInt32LE(12);
    let nChunk = buf.readInt32LE(16);
    if (maxChunks >= 0) nChunk = Math.min(nChunk, maxChunks);
    const tokens = new Int32Array(buf.buffer.slice(buf.byteOffset + 20, buf.byteOffset + 20 + 4 * buf.readInt32LE(16) * nCtx));
    const first = Math.floor(nCtx / 2), rowsPerChunk = nCtx - 1 - first;
    const nv = 2 * Math.floor((nVocab + 1) / 2) + 4;
    const rowsAt = 20 + tokens.byteLength;
    let sumKld = 0, sumKld2 = 0, sameTop = 0, count = 0, sumNll = 0;
    for (let c = 0; c < nChunk; c++) {
        const chunk = Array.from(tokens.subarray(c * nCtx, (c + 1) * nCtx));
        if (e.model.tokens.shouldPrependBosToken) chunk[0] = e.model.tokens.bos;
        const rows = await e.evaluate(chunk, first);
        if (e.nVocab !== nVocab) throw new Error(`vocabulary ${e.nVocab} differs from the file's ${nVocab}`);
        for (let k = 0; k < rowsPerChunk; k++) {
            const logits = rows[k];
            const off = rowsAt + 2 * nv * (c * rowsPerChunk + k);
            const scale = buf.readFloatLE(off), minLp = buf.readFloatLE(off + 4);
            let imax = 0;
            for (let i = 1; i < nVocab; i++) if (logits[i] > logits[imax]) imax = i;
            let sum = 0;
            for (let i = 0; i < nVocab; i++) sum += Math.exp(logits[i] - logits[imax]);
            const norm = logits[imax] + Math.log(sum);
            let kld = 0, imaxBase = 0, lpMax = -Infinity;
            for (let i = 0; i < nVocab; i++) {
                const lp = scale * buf.readUInt16LE(off + 8 + 2 * i) + minLp;
                if (lp > lpMax) { lpMax = lp; imaxBase = i; }
                if (lp > -16) kld += Math.exp(lp) * (lp - (logits[i] - norm));
            }
            sumKld += kld; sumKld2 += kld * kld; count++;
            if (imax === imaxBase) sameTop++;
            sumNll += norm - logits[tokens[c * nCtx + first + 1 + k]];
        }
    }
    const mean = sumKld / count, v = sumKld2 / count - mean * mean;
    return {count, kld: mean, kld_error: v > 0 && count > 10 ? Math.sqrt(v / (count - 1)) : 0,
            same_top: sameTop / count, ppl: Math.exp(sumNll / count), n_chunks: nChunk, n_ctx: nCtx};
}

// One request: the result object of a command line's arguments.
async function run(llama, argv) {
    const opts = parseArgs(argv);
    const e = await Engine.open(llama, opts);
    try {
        return await runOn(e, opts);
    } finally {
        if (e.ctx) await e.ctx.dispose();
        await e.model.dispose();
    }
}

async function runOn(e, opts) {
    const readText = () => (opts["text-file"] !== undefined ? fs.readFileSync(opts["text-file"], "utf8") : opts.text);
    let result;
    if (opts.cmd === "info") {
        await e.evaluate([e.model.tokens.bos ?? 0]);
        result = {n_vocab: e.nVocab, bos: e.model.tokens.bos, eos: e.model.tokens.eos,
                  add_bos: e.model.tokens.shouldPrependBosToken, n_ctx_train: e.model.trainContextSize,
                  engine: "llama.cpp via node-llama-cpp", build: e.llama.llamaCppRelease};
    } else if (opts.cmd === "tokenize") {
        result = {ids: e.tokenizeDocument(readText())};
    } else if (opts.cmd === "logits") {
        const ids = parseIds(opts.ids);
        const rows = await e.evaluate(ids, opts.all ? 0 : ids.length - 1);
        const flat = new Float32Array(rows.length * e.nVocab);
        rows.forEach((r, i) => flat.set(r, i * e.nVocab));
        if (opts.out) writeNpy(opts.out, flat, opts.all ? [rows.length, e.nVocab] : [e.nVocab]);
        result = {n_positions: ids.length, n_vocab: e.nVocab, argmax_last: argmax(rows[rows.length - 1])};
    } else if (opts.cmd === "greedy") {
        const ids = parseIds(opts.ids);
        const n = Number(opts.n ?? 8);
        const out = [];
        for (let i = 0; i < n; i++) {
            const [last] = await e.evaluate(ids.concat(out), ids.length + out.length - 1);
            out.push(argmax(last));
        }
        result = {continuation: out};
    } else if (opts.cmd === "perplexity") {
        const tokens = opts["ids-file"] !== undefined ? parseIds(fs.readFileSync(opts["ids-file"], "utf8"))
                                                      : e.tokenizeDocument(readText());
        const nCtx = Number(opts.c ?? 512);
        if (tokens.length < 2 * nCtx) throw new Error(`need at least ${2 * nCtx} tokens, have ${tokens.length}`);
        let nChunk = Math.floor(tokens.length / nCtx);
        if (opts.chunks !== undefined && Number(opts.chunks) >= 0) nChunk = Math.min(nChunk, Number(opts.chunks));
        const first = Math.floor(nCtx / 2);
        const addBos = opts["ids-file"] === undefined ? e.model.tokens.shouldPrependBosToken
                                                      : (opts["bos-first"] ?? "auto") === "auto" ? e.model.tokens.shouldPrependBosToken
                                                      : opts["bos-first"] === "1";
        let sum = 0, sum2 = 0, count = 0;
        const running = [];
        for (let c = 0; c < nChunk; c++) {
            const chunk = tokens.slice(c * nCtx, (c + 1) * nCtx);
            if (addBos) chunk[0] = e.model.tokens.bos;
            const targets = tokens.slice(c * nCtx + first + 1, (c + 1) * nCtx);
            for (const v of await e.targetNlls(chunk, first, targets)) {
                sum += v; sum2 += v * v; count++;
            }
            running.push(Math.exp(sum / count));
        }
        const mean = sum / count, ppl = Math.exp(mean);
        const v = sum2 / count - mean * mean;
        result = {ppl, ppl_error: v > 0 ? ppl * Math.sqrt(v / (count - 1)) : 0, n_tokens: tokens.length,
                  n_chunks: nChunk, n_scored: count, bos_first: addBos, running_ppl: running, n_ctx: nCtx};
    } else if (opts.cmd === "kl") {
        result = await klDivergence(e, opts.base, opts.chunks === undefined ? -1 : Number(opts.chunks));
    } else {
        throw new Error(`unknown command ${opts.cmd}`);
    }
    return result;
}

async function serve(llama) {
    const lines = readline.createInterface({input: process.stdin, crlfDelay: Infinity});
    for await (const line of lines) {
        if (!line.trim()) continue;
        let answer;
        try {
            answer = {result: await run(llama, JSON.parse(line))};
        } catch (err) {
            answer = {error: err.message};
        }
        process.stdout.write(JSON.stringify(answer) + "\n");
    }
}

async function main() {
    const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error});
    if (process.argv[2] === "serve") await serve(llama);
    else process.stdout.write(JSON.stringify(await run(llama, process.argv.slice(2))) + "\n");
    await llama.dispose();
}

main().catch((err) => {
    process.stderr.write(`llama_ref: ${err.message}\n`);
    process.exit(1);
});
