// A std::vector whose resize() leaves new elements unwritten (default-initialised:
// indeterminate for float). For the forward pass's large buffers (KV cache,
// activations for a whole batch): the pages of a fresh allocation are then touched,
// and faulted in, only where the forward pass writes, so a short prompt does not
// pay for zeroing a cache sized for the whole context. Every element must be
// written before it is read.
#pragma once
#include <memory>
#include <new>
#include <utility>
#include <vector>

namespace minigpt {

template <class T>
struct NoInitAllocator : std::allocator<T> {
    using value_type = T;
    template <class U>
    struct rebind {
        using other = NoInitAllocator<U>;
    };
    NoInitAllocator() = default;
    template <class U>
    NoInitAllocator(const NoInitAllocator<U>&) noexcept {}
    // construct() with no arguments default-initialises; with arguments, as usual.
    template <class U, class... Args>
    void construct(U* p, Args&&... args) {
        if constexpr (sizeof...(Args) == 0) ::new (static_cast<void*>(p)) U;
        else ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
    }
};

template <class T>
using UninitVector = std::vector<T, NoInitAllocator<T>>;

}  // namespace minigpt
