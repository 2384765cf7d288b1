// Classifies one image with the package as an app would import it. The model
// folder is copied into the build's public folder, because a bundler copies
// only files that code names one by one.
import { createClassifier } from 'dualmem';

window.classifySample = async ({ worker, classes }) => {
  try {
    const classifier = await createClassifier({
      model: new URL('./models/tiny-clip/', location.href),
      classes,
      templates: 'simple',
      worker,
    });
    const image = await (await fetch('./sample.png')).blob();
    const result = await classifier.classify(image);
    await classifier.dispose();
    return { label: result.label, score: result.score };
  } catch (error) {
    return { error: { code: error.code, message: String(error.message ?? error) } };
  }
};
window.appReady = true;
