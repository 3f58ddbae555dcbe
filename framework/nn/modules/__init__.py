"""nn layers: every torch.nn module class that framework provides."""

from .activation import (  # noqa: F401
    ELU,
    GELU,
    Hardsigmoid,
    Hardswish,
    Hardtanh,
    LeakyReLU,
    LogSigmoid,
    LogSoftmax,
    Mish,
    ReLU,
    ReLU6,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Softsign,
    Tanh,
)
from .container import ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential  # noqa: F401
from .conv import Conv1d, Conv2d, ConvTranspose2d  # noqa: F401
from .extra import (  # noqa: F401
    CELU,
    GLU,
    SELU,
    ConstantPad1d,
    ConstantPad2d,
    CosineEmbeddingLoss,
    Dropout1d,
    Dropout2d,
    GaussianNLLLoss,
    Hardshrink,
    HingeEmbeddingLoss,
    InstanceNorm1d,
    InstanceNorm2d,
    MarginRankingLoss,
    MultiLabelSoftMarginLoss,
    PoissonNLLLoss,
    PReLU,
    ReflectionPad1d,
    ReflectionPad2d,
    ReplicationPad1d,
    ReplicationPad2d,
    RMSNorm,
    Softmax2d,
    Softmin,
    Softshrink,
    SoftMarginLoss,
    Tanhshrink,
    Threshold,
    TripletMarginLoss,
    Upsample,
    UpsamplingBilinear2d,
    UpsamplingNearest2d,
    ZeroPad1d,
    ZeroPad2d,
)
from .linear import Bilinear, Identity, Linear  # noqa: F401
from .loss import (  # noqa: F401
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    HuberLoss,
    KLDivLoss,
    L1Loss,
    MSELoss,
    NLLLoss,
    SmoothL1Loss,
)
from .misc import (CosineSimilarity, Dropout, Embedding, EmbeddingBag, Flatten, Fold, PixelShuffle, PixelUnshuffle,  # noqa: F401
                   Unflatten, Unfold)
from .module import Module  # noqa: F401
from .normalization import BatchNorm1d, BatchNorm2d, GroupNorm, LayerNorm  # noqa: F401
from .pooling import AdaptiveAvgPool2d, AvgPool1d, AvgPool2d, MaxPool1d, MaxPool2d  # noqa: F401
from .rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell  # noqa: F401
from .transformer import (  # noqa: F401
    MultiheadAttention,
    TransformerDecoder,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
)
