"""ViTMatte ViT-S baseline: the same meta-architecture with the plain ViTMatte encoder.

The encoder's layout (width, heads, depth, window layout) is MEMatte-S's, read from
``mematte_s.py`` where it is written once; the decoder's input width follows the encoder's (an
interpolation), so one override of ``model.backbone.embed_dim`` changes both."""

from detectron2.config import LazyCall as L

from mematte_d2.modeling import DetailCapture, MattingCriterion, MEMatte, ViTMatteEncoder

from .mematte_s import VIT_LAYOUT
from .mematte_s import model as _mematte_s

model = L(MEMatte)(
    backbone=L(ViTMatteEncoder)(
        **{key: _mematte_s.backbone[key] for key in VIT_LAYOUT},
        img_size=512,
    ),
    teacher_backbone=None,
    decoder=L(DetailCapture)(in_chans="${..backbone.embed_dim}"),
    criterion=L(MattingCriterion)(),
    tile_size=512,
    tile_context=64,
    skip_known_tiles=True,  # inference: decode only around unknown pixels, fill the rest
)
