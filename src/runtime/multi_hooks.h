// Several ForwardHooks attached to one Transformer at once (ablation plus an
// attention export plus a logit lens, say). Transformer::set_hooks takes one
// object; MultiHooks fans each call out to the children that want that point.
//
// Children are called in the order they were added, so add interventions
// (which change the values in place) before observers that should see the
// changed values. wanted() is read once by set_hooks: add every child first.
#pragma once
#include <vector>

#include "runtime/hooks.h"

namespace minigpt {

class MultiHooks : public ForwardHooks {
public:
    void add(ForwardHooks* hooks) {  // nullptr is ignored, so optional parts can be passed as they are
        if (hooks) children_.push_back({hooks, hooks->wanted()});
    }
    bool empty() const { return children_.empty(); }
    uint32_t wanted() const override {
        uint32_t mask = 0;
        for (const Child& c : children_) mask |= c.mask;
        return mask;
    }
    void on(const HookView& view) override {
        const uint32_t bit = hook_bit(view.hook);
        for (const Child& c : children_)
            if (c.mask & bit) c.hooks->on(view);
    }

private:
    struct Child {
        ForwardHooks* hooks;
        uint32_t mask;
    };
    std::vector<Child> children_;
};

}  // namespace minigpt
