#pragma once
// Errors are values: every operation that can fail on user input returns a Result.

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace oac {

// `message` is a complete sentence meant to be shown to a person as is.
struct Error {
  std::string message;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : outcome_(std::in_place_index<0>, std::move(value)) {}
  Result(Error error) : outcome_(std::in_place_index<1>, std::move(error)) {}

  bool ok() const { return outcome_.index() == 0; }
  explicit operator bool() const { return ok(); }

  // value() requires ok(); error() requires !ok().
  const T& value() const& {
    assert(ok());
    return *std::get_if<0>(&outcome_);
  }
  T& value() & {
    assert(ok());
    return *std::get_if<0>(&outcome_);
  }
  T&& value() && {
    assert(ok());
    return std::move(*std::get_if<0>(&outcome_));
  }
  const Error& error() const {
    assert(!ok());
    return *std::get_if<1>(&outcome_);
  }

 private:
  std::variant<T, Error> outcome_;
};

}  // namespace oac
