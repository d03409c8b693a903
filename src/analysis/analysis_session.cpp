#include "analysis/analysis_session.h"

#include <stdexcept>

#include "eval/text_windows.h"
#include "util/read_file.h"

namespace minigpt {

AnalysisSession::AnalysisSession(const Model& model, const Tokenizer& tokenizer, const AnalysisOptions& options,
                                 int n_threads)
    : model_(model), tok_(tokenizer), opt_(options), n_threads_(n_threads) {
    const Config& c = model.config();
    if (!opt_.ablate.empty()) heads_ = parse_head_list(opt_.ablate, c.n_layer, c.n_head, "--ablate");
    if (!opt_.mean_file.empty() && (heads_.empty() || opt_.ablate_mode != AblationMode::Mean))
        throw std::runtime_error("--mean-file needs --ablate with --ablate-mode mean");
}

void AnalysisSession::begin(Transformer& tf, const std::vector<int32_t>& prompt) {
    if (tf.pos() != 0) throw std::runtime_error("analysis: begin() needs an empty cache");
    const Config& c = model_.config();
    if (!heads_.empty()) {
        std::vector<float> means;
        if (opt_.ablate_mode == AblationMode::Mean) {
            std::vector<int32_t> ref = prompt;
            int32_t bos = -1;
            if (!opt_.mean_file.empty()) {
                ref = tok_.encode(read_file(opt_.mean_file, "--mean-file"));
                if (tok_.add_bos() && tok_.bos_id() >= 0) bos = tok_.bos_id();
                if (ref.empty()) throw std::runtime_error(opt_.mean_file + ": the text has no tokens (--mean-file)");
            }
            means = mean_head_outputs(model_, split_windows(ref, c.n_ctx, bos), n_threads_);
        }
        ablation_ = std::make_unique<HeadAblation>(c, opt_.ablate_mode, std::move(means));
        ablation_->set_heads(heads_);
        hooks_.add(ablation_.get());  // first: the observers below see the ablated run
    }
    if (!opt_.attention_path.empty()) {
        attention_ = std::make_unique<AttentionWriter>(opt_.attention_path, c, opt_.attention_type);
        hooks_.add(attention_.get());
    }
    if (!opt_.trace_path.empty()) {
        trace_ = std::make_unique<TraceWriter>(opt_.trace_path, model_, tok_, opt_.trace);
        hooks_.add(trace_->hooks());
        trace_->begin(prompt, opt_.attention_path);
    }
    if (!hooks_.empty()) {
        tf_ = &tf;
        tf.set_hooks(&hooks_);
    }
}

void AnalysisSession::step(int64_t pos, const float* logits, int32_t chosen_id) {
    if (trace_) trace_->step(pos, logits, chosen_id);
}

void AnalysisSession::finish(const std::vector<int32_t>& ids) {
    if (attention_) attention_->finish(ids);
    if (trace_) trace_->close();
    if (tf_) tf_->set_hooks(nullptr);
    tf_ = nullptr;
}

}  // namespace minigpt
