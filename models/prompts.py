"""Caption templates and class synonyms for training and zero-shot evaluation."""

# Every template has one `{}` for the class word. The zero-shot class
# embedding averages these templates filled with the folder name of the class.
TEMPLATES = (
    'a photo of a {}.',
    'a photo of the {}.',
    'a black and white photo of a {}.',
    'a grayscale photo of a {}.',
    'a low resolution photo of a {}.',
    'a low resolution photo of the {}.',
    'a blurry photo of a {}.',
    'a pixelated photo of a {}.',
    'a product photo of a {}.',
    'a catalogue image of a {}.',
    'a close-up photo of a {}.',
    'a small photo of a {}.',
    'a picture of a {}.',
    'an image of a {}.',
    'a photo of a {}, a fashion item.',
    '{}',
)

# Words for each class, in label order. The first entry of each row is the
# folder name, which is what zero-shot prompts use.
SYNONYMS = (
    ('t-shirt', 't-shirt/top', 'tee', 'tshirt', 'top'),
    ('trouser', 'trousers', 'pants', 'jeans'),
    ('pullover', 'sweater', 'jumper'),
    ('dress', 'gown'),
    ('coat', 'jacket'),
    ('sandal', 'sandals'),
    ('shirt', 'button-down shirt', 'blouse'),
    ('sneaker', 'sneakers', 'trainer', 'running shoe'),
    ('bag', 'handbag', 'purse'),
    ('ankle boot', 'boot', 'ankle boots'),
)


def class_captions(label):
    """Return every caption of class `label`: each template with each synonym."""
    return [t.format(word) for word in SYNONYMS[label] for t in TEMPLATES]


def zero_shot_prompts(class_name):
    """Return the prompts whose embeddings average to the class embedding."""
    return [t.format(class_name) for t in TEMPLATES]
