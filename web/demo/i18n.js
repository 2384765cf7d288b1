// The demo's strings in English and Japanese. Elements name their string in
// a data-i18n attribute (text) or data-i18n-placeholder / data-i18n-title.

const STRINGS = {
  en: {
    title: 'dualmem: image classification on your device',
    tagline: 'A CLIP model and Dual Memory Networks running in WebAssembly in this tab. Your images never leave it.',
    language: 'Language',
    statusLoading: 'Loading the model…',
    statusDownload: 'Loading {file}: {percent}',
    statusPrompts: 'Encoding class prompts: {loaded} of {total}',
    statusReady: 'Ready: {model}, {mode} mode, {threads}',
    statusBusy: 'Classifying {done} of {total}…',
    statusError: 'Error: {message}',
    statusOffline: 'Offline: running from the cached copy',
    threadsIsolated: 'cross-origin isolated',
    threadsSingle: 'one thread (no cross-origin isolation)',
    modelNoteTitle: 'About the model',
    modelNote: 'The embedded model, tiny-clip, is a 13 MB CLIP trained only on Fashion-MNIST. It knows ten clothing classes (t-shirt, trouser, pullover, dress, coat, sandal, shirt, sneaker, bag, ankle boot) in small gray pictures, and gives meaningless answers for other photos. For real photos, load a full CLIP in the Hugging Face layout with ONNX files (for example an export of openai/clip-vit-base-patch32): from a URL on this server, or from a folder on your computer.',
    modelUrl: 'Model URL',
    loadUrl: 'Load from URL',
    loadFolder: 'Load a local folder…',
    embeddedModel: 'Use the embedded model',
    folderNeedsWorker: 'Loading a local folder needs the service worker, which is not active. Reload the page and try again.',
    classifyTitle: 'Classify',
    dropHint: 'Drop images here, paste them (Ctrl+V) or',
    pick: 'choose files',
    samples: 'Try sample images',
    clearResults: 'Clear results',
    resultsEmpty: 'No results yet. Try the sample images.',
    truth: 'true: {label}',
    correctTo: 'Correct to',
    correctButton: 'Correct',
    corrected: 'Corrected to {label}: now a shot',
    wouldSay: 'Adaptive would say {label}',
    sources: 'Score of {label} by source',
    sourceText: 'text',
    sourceStatic: 'static',
    sourceDynamic: 'dynamic',
    classesTitle: 'Classes',
    className: 'Name',
    classPrompts: 'Prompts (one a line; empty: templates)',
    shots: 'Shots',
    addShots: 'Add examples',
    removeClass: 'Remove',
    addClass: 'Add class',
    applyClasses: 'Apply class changes',
    rolloutTitle: 'Staged rollout',
    mode: 'Mode',
    modeFrozen: 'frozen: text and shots only, no memory writes',
    modeShadow: 'shadow: write dynamic memory, answer as frozen',
    modeAdaptive: 'adaptive: answer with all three memories',
    capacity: 'Dynamic slots per class',
    precision: 'Slot precision',
    retentionDays: 'Keep memories for (days, 0: forever)',
    byteBudget: 'Byte budget (KB, 0: none)',
    applySettings: 'Apply settings',
    shadowReport: 'Dynamic memory would have changed {changed} of {total} answers ({percent}).',
    shadowNone: 'Switch to shadow mode to see how often dynamic memory would change the answer.',
    shadowWaiting: 'Shadow mode is on: classify images to see how often dynamic memory would change the answer.',
    inspectorTitle: 'Memory inspector',
    plotSlots: 'Slots per class by source',
    plotEntropy: 'Entropy of predictions',
    plotAgreement: 'Agreement and accuracy over time',
    plotBytes: 'Bytes used against the budget',
    agreement: 'agreement',
    accuracy: 'accuracy',
    noBudget: 'no budget',
    memoriesTitle: 'Your memories',
    exportMemories: 'Export',
    importMemories: 'Import…',
    wipeMemories: 'Wipe everything',
    wipeConfirm: 'Delete all memories, results and cached prompts on this device?',
    exported: 'Exported {bytes} bytes.',
    imported: 'Imported the memories.',
    wiped: 'Wiped the memories.',
    warning: 'Warning: {message}',
    persistenceMissing: 'This build of dualmem cannot save memories yet; they last until you close the tab.',
    exportMissing: 'Memories are saved on this device (IndexedDB), but this build of dualmem cannot export or import them from a worker.',
    privacyTitle: 'Privacy',
    privacy1: 'Images are decoded and classified in this tab, in a Web Worker. They are never uploaded: the page makes no requests except for its own files, the WebAssembly and the model.',
    privacy2: 'Stored on this device: the model files and prompt embeddings (Cache Storage), the page files for offline use (service worker) and the memories (IndexedDB). A memory slot is the image embedding of a shot, a correction or a confident prediction (64 numbers with the embedded model), never the image itself.',
    privacy3: '“Wipe everything” deletes the memories and the cached prompts. Retention days and the byte budget limit what is kept.',
    offlineReady: 'Works offline after this visit.',
    newClassName: 'new class',
  },
  ja: {
    title: 'dualmem:端末内で画像を分類',
    tagline: 'CLIP モデルと Dual Memory Networks が、このタブの WebAssembly で動きます。画像は外部に送信されません。',
    language: '言語',
    statusLoading: 'モデルを読み込んでいます…',
    statusDownload: '{file} を読み込み中:{percent}',
    statusPrompts: 'クラスのプロンプトを符号化中:{total} 件中 {loaded} 件',
    statusReady: '準備完了:{model}、{mode} モード、{threads}',
    statusBusy: '分類中:{total} 枚中 {done} 枚…',
    statusError: 'エラー:{message}',
    statusOffline: 'オフライン:キャッシュから動作しています',
    threadsIsolated: 'クロスオリジン分離あり',
    threadsSingle: '単一スレッド(クロスオリジン分離なし)',
    modelNoteTitle: 'モデルについて',
    modelNote: '同梱モデル tiny-clip は、Fashion-MNIST だけで学習した 13 MB の CLIP です。小さなグレースケール画像の衣料品 10 クラス(T シャツ、ズボン、プルオーバー、ドレス、コート、サンダル、シャツ、スニーカー、バッグ、アンクルブーツ)しか知らず、それ以外の写真には意味のない答えを返します。実際の写真を分類するには、ONNX ファイルを含む Hugging Face 形式の CLIP(たとえば openai/clip-vit-base-patch32 を書き出したもの)を、このサーバー上の URL か、お使いのコンピューターのフォルダーから読み込んでください。',
    modelUrl: 'モデルの URL',
    loadUrl: 'URL から読み込む',
    loadFolder: 'ローカルフォルダーを読み込む…',
    embeddedModel: '同梱モデルに戻す',
    folderNeedsWorker: 'ローカルフォルダーの読み込みにはサービスワーカーが必要ですが、有効になっていません。ページを再読み込みしてからもう一度お試しください。',
    classifyTitle: '分類',
    dropHint: '画像をここにドロップするか、貼り付ける(Ctrl+V)か、',
    pick: 'ファイルを選択',
    samples: 'サンプル画像を試す',
    clearResults: '結果を消去',
    resultsEmpty: 'まだ結果はありません。サンプル画像を試してみてください。',
    truth: '正解:{label}',
    correctTo: '正しいクラス',
    correctButton: '修正',
    corrected: '{label} に修正しました(ショットとして登録)',
    wouldSay: 'adaptive なら {label}',
    sources: '{label} のスコア(情報源別)',
    sourceText: 'テキスト',
    sourceStatic: '静的',
    sourceDynamic: '動的',
    classesTitle: 'クラス',
    className: '名前',
    classPrompts: 'プロンプト(1 行に 1 つ。空ならテンプレート)',
    shots: 'ショット',
    addShots: '例を追加',
    removeClass: '削除',
    addClass: 'クラスを追加',
    applyClasses: 'クラスの変更を適用',
    rolloutTitle: '段階的な導入',
    mode: 'モード',
    modeFrozen: 'frozen:テキストとショットのみ。メモリに書き込まない',
    modeShadow: 'shadow:動的メモリに書き込むが、答えは frozen のまま',
    modeAdaptive: 'adaptive:3 つのメモリすべてで答える',
    capacity: 'クラスごとの動的スロット数',
    precision: 'スロットの精度',
    retentionDays: 'メモリの保存期間(日。0 は無期限)',
    byteBudget: 'バイト上限(KB。0 は上限なし)',
    applySettings: '設定を適用',
    shadowReport: '動的メモリを使っていれば、{total} 件中 {changed} 件({percent})の答えが変わっていました。',
    shadowNone: 'shadow モードにすると、動的メモリで答えがどれだけ変わるかを確認できます。',
    shadowWaiting: 'shadow モードです。画像を分類すると、動的メモリで答えがどれだけ変わるかがわかります。',
    inspectorTitle: 'メモリの状態',
    plotSlots: 'クラスごとのスロット数(情報源別)',
    plotEntropy: '予測のエントロピー分布',
    plotAgreement: '一致率と正解率の推移',
    plotBytes: '使用バイト数と上限',
    agreement: '一致率',
    accuracy: '正解率',
    noBudget: '上限なし',
    memoriesTitle: 'メモリの管理',
    exportMemories: '書き出す',
    importMemories: '読み込む…',
    wipeMemories: 'すべて消去',
    wipeConfirm: 'この端末のメモリ、結果、キャッシュしたプロンプトをすべて削除しますか?',
    exported: '{bytes} バイトを書き出しました。',
    imported: 'メモリを読み込みました。',
    wiped: 'メモリを消去しました。',
    warning: '警告:{message}',
    persistenceMissing: 'この版の dualmem はまだメモリを保存できません。メモリはタブを閉じるまで有効です。',
    exportMissing: 'メモリはこの端末(IndexedDB)に保存されますが、この版の dualmem ではワーカーからの書き出しと読み込みができません。',
    privacyTitle: 'プライバシー',
    privacy1: '画像はこのタブの Web Worker の中でデコードされ、分類されます。画像がアップロードされることはありません。このページが行う通信は、ページ自身のファイル、WebAssembly、モデルの取得だけです。',
    privacy2: 'この端末に保存されるもの:モデルファイルとプロンプトの埋め込み(Cache Storage)、オフライン用のページファイル(サービスワーカー)、メモリ(IndexedDB)。メモリのスロットは、ショット・修正・確信度の高い予測から得た画像の埋め込み(同梱モデルでは 64 個の数値)で、画像そのものではありません。',
    privacy3: '「すべて消去」でメモリとキャッシュしたプロンプトを削除します。保存期間とバイト上限で、保持する量を制限できます。',
    offlineReady: '次回からはオフラインでも動作します。',
    newClassName: '新しいクラス',
  },
};

export const LANGUAGES = Object.keys(STRINGS);

/** Picks 'ja' for a Japanese browser language and 'en' otherwise. */
export function preferredLanguage(languages = globalThis.navigator?.languages ?? []) {
  for (const tag of languages) {
    const base = String(tag).toLowerCase().split('-')[0];
    if (LANGUAGES.includes(base)) return base;
  }
  return 'en';
}

/**
 * Returns the string `key` in `language` with `{name}` placeholders filled;
 * falls back to English, then to the key itself.
 */
export function translate(language, key, params = {}) {
  const template = STRINGS[language]?.[key] ?? STRINGS.en[key] ?? key;
  return template.replace(/\{(\w+)\}/g, (match, name) => (name in params ? String(params[name]) : match));
}

/** Fills every element under `root` that names a string. */
export function applyLanguage(root, language) {
  root.documentElement?.setAttribute('lang', language);
  for (const element of root.querySelectorAll('[data-i18n]')) {
    element.textContent = translate(language, element.dataset.i18n);
  }
  for (const element of root.querySelectorAll('[data-i18n-placeholder]')) {
    element.placeholder = translate(language, element.dataset.i18nPlaceholder);
  }
  for (const element of root.querySelectorAll('[data-i18n-title]')) {
    element.title = translate(language, element.dataset.i18nTitle);
  }
}
