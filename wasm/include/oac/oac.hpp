#pragma once
// The whole public surface of the image core.

#include "oac/dicom.hpp"
#include "oac/image.hpp"
#include "oac/model_card.hpp"
#include "oac/outputs.hpp"
#include "oac/preprocess.hpp"
#include "oac/result.hpp"
