#include "analysis/analysis_session.h"

#include <stdexcept>

#include "eval/text_windows.h"

namespace minigpt {

AnalysisSession::AnalysisSession(const Model& model, const Tokenizer& tokenizer, const AnalysisOptions& options,
                                 int n_threads)
    : model_(model), tok_(tokenizer), opt_(options), n_threads_(n_threads) {
    heads_ = ablation_heads(opt_.ablation, model.config());
}

void AnalysisSession::begin(Transformer& tf, const std::vector<int32_t>& prompt) {
    if (tf.pos() != 0) throw std::runtime_error("analysis: begin() needs an empty cache");
    const Config& c = model_.config();
    // Mean mode's reference: --mean-file, else the prompt.
    ablation_ = ablation_from_options(model_, opt_.ablation, split_windows(prompt, c.n_ctx, -1), c.n_ctx, n_threads_,
                                      &tok_);
    if (ablation_) hooks_.add(ablation_.get());  // first: the observers below see the ablated run
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
