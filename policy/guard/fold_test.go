package guard

import (
	"encoding/json"
	"testing"
	"unicode"

	"github.com/stretchr/testify/require"

	"github.com/tollgate-ai/tollgate/policy/llm"
)

// nonLatinProse is ordinary text in Cyrillic, Greek, Arabic and Indic
// scripts, with dates, times, amounts and all-capital headlines: folding
// look-alike letters and digits must not turn any of it into a finding.
var nonLatinProse = []string{
	// Russian
	"Привет! Как дела? Я вчера ходил в магазин и купил хлеб, молоко и сыр.",
	"Совещание перенесено на 15 марта 2024 года, в 10:30, в переговорную №4.",
	"ООО «Ромашка» сообщает: выручка за III квартал выросла на 12,5% и составила 1,2 млрд рублей.",
	"ВНИМАНИЕ! СРОЧНО ОБНОВИТЕ ПАРОЛЬ К ПОЧТЕ ДО КОНЦА НЕДЕЛИ. СПАСИБО ЗА ПОНИМАНИЕ.",
	"Он сказал: «Забудь всё, что было раньше, и начни сначала». Мы посмеялись и пошли пить чай.",
	"Сосна, ель, береза и осока растут у реки; сорока сидит на крыше, а кот спит на окне.",
	"АКЦИЯ! СКИДКА 30% НА ВСЁ: ТЕЛЕВИЗОРЫ, КОМПЬЮТЕРЫ И ТЕХНИКУ ДЛЯ ДОМА.",
	// Ukrainian, Bulgarian, Serbian
	"Київ — столиця України; населення міста становить приблизно 2,9 мільйона осіб.",
	"София е най-големият град в България с население от около 1,3 милиона души.",
	"Београд је главни град Србије и налази се на ушћу Саве у Дунав.",
	// Greek
	"Η Αθήνα είναι η πρωτεύουσα της Ελλάδας και μία από τις αρχαιότερες πόλεις του κόσμου.",
	"ΕΚΤΑΚΤΟ ΔΕΛΤΙΟ ΚΑΙΡΟΥ: ΙΣΧΥΡΕΣ ΒΡΟΧΕΣ ΚΑΙ ΚΑΤΑΙΓΙΔΕΣ ΑΠΟ ΤΗΝ ΤΡΙΤΗ 12 ΜΑΡΤΙΟΥ.",
	"Το συνέδριο θα γίνει στις 3 Οκτωβρίου, στην αίθουσα Β, από τις 9:00 έως τις 17:00.",
	"ΚΑΙ ΤΟ ΜΗΝΥΜΑ ΗΤΑΝ ΑΠΛΟ: ΟΧΙ ΑΛΛΕΣ ΚΑΘΥΣΤΕΡΗΣΕΙΣ ΣΤΟ ΕΡΓΟ ΤΟΥ ΜΕΤΡΟ.",
	// Arabic, Persian, Hindi, Bengali, with their own digits
	"سيعقد الاجتماع يوم ١٥ مارس ٢٠٢٤ في الساعة ١٠:٣٠ صباحاً في القاعة رقم ٤.",
	"بلغت الإيرادات ١٢٫٥ مليون دولار في الربع الثالث من عام ٢٠٢٣، بزيادة ٨٪.",
	"جلسه در تاریخ ۱۴۰۳/۰۱/۱۵ ساعت ۱۰ صبح برگزار می\u200cشود و حدود ۲۵۰ نفر شرکت می\u200cکنند.",
	"बैठक १५ मार्च २०२४ को सुबह १० बजे होगी और इसमें लगभग २५० लोग शामिल होंगे।",
	"ঢাকা বাংলাদেশের রাজধানী, যেখানে প্রায় ২ কোটি মানুষ বাস করে।",
}

func TestNonLatinProseNoFindings(t *testing.T) {
	p := allPlan(t)
	for _, text := range nonLatinProse {
		require.Empty(t, detect(t, p, text), "%q", text)
	}
}

// The normalized view folds look-alike letters and Unicode digits to ASCII
// and keeps everything else.
func TestNormalizeFolds(t *testing.T) {
	tests := []struct{ in, want string }{
		{"\u0410KIA", "AKIA"},
		{"g\u04bbp_", "ghp_"},
		{"\u0391\u0392\u0395\u0396\u0397\u0399\u039a\u039c\u039d\u039f\u03a1\u03a4\u03a5\u03a7", "ABEZHIKMNOPTYX"},
		{"\u0430\u0441\u0435\u043e\u0440\u0445\u0443\u0455\u0456\u0458\u04bb\u0501\u051b\u051d\u04cf", "aceopxysijhdqwl"},
		{"\ua4ee\ua4d0\ua4da\ua4d3\ua4f0\ua4dd\ua4d6\ua4e7\ua4f2\ua4d9\ua4d7\ua4e1\ua4df\ua4e0\ua4f3\ua4d1\ua4e3\ua4e2\ua4d4\ua4f4\ua4e6\ua4ea\ua4eb\ua4ec\ua4dc",
			"ABCDEFGHIJKLMNOPRSTUVWXYZ"},
		{"\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669", "0123456789"},
		{"\u06f0\u06f9 \u0966\u096f \u09e6\u09ef \u0e50\u0e59 \U000104a0\U000104a9", "09 09 09 09 09"},
		// NFKC first: full-width and mathematical forms.
		{"\uff21\U0001d7cf", "A1"},
		// Letters without a Latin look-alike stay.
		{"\u043f\u0440\u0438\u0432\u0435\u0442", "\u043fp\u0438\u0432e\u0442"},
		{"\u03bb\u03bf\u03b3\u03bf\u03c2", "\u03bbo\u03b3o\u03c2"},
		// A look-alike carrying a combining mark is another letter.
		{"\u0430\u0301b", "\u0430\u0301b"},
		{"\u0661\u0301", "\u0661\u0301"},
	}
	for _, tc := range tests {
		var z normalizer
		out, ident := z.normalize([]byte(tc.in))
		require.Equal(t, tc.want, string(out), "%q", tc.in)
		if tc.want != tc.in {
			require.False(t, ident)
			require.Len(t, z.offs, len(out)+1)
		}
	}
}

// digitValue agrees with the Unicode tables: every decimal digit range is
// made of whole runs of ten starting at a zero.
func TestDigitValue(t *testing.T) {
	count := 0
	for _, r16 := range unicode.Nd.R16 {
		require.EqualValues(t, 1, r16.Stride)
		require.Zero(t, (r16.Hi-r16.Lo+1)%10)
	}
	for _, r32 := range unicode.Nd.R32 {
		require.EqualValues(t, 1, r32.Stride)
		require.Zero(t, (r32.Hi-r32.Lo+1)%10)
	}
	for r := rune(0); r <= unicode.MaxRune; r++ {
		v := digitValue(r)
		if !unicode.IsDigit(r) {
			require.Equal(t, -1, v, "%U", r)
			continue
		}
		count++
		require.True(t, v >= 0 && v <= 9, "%U", r)
		if v > 0 {
			require.Equal(t, v-1, digitValue(r-1), "%U", r)
		}
	}
	require.Greater(t, count, 600)
	require.Equal(t, 7, digitValue('\u0667'))
	require.Equal(t, 3, digitValue('\u06f3'))
	require.Equal(t, 9, digitValue('\u096f'))
}

// Redaction removes the original look-alike spelling from the body.
func TestFoldRedaction(t *testing.T) {
	e := allEngine(t)
	tests := []struct{ name, text, want string }{
		{"cyrillic email", "mail j\u043ehn@\u0435x\u0430mple.com now", "mail [EMAIL_1] now"},
		{"cyrillic aws prefix", "key \u0410KIA" + fakeAWS[4:] + ".", "key [AWS_ACCESS_KEY_1]."},
		{"arabic-indic card", "card \u0664\u0661\u0661\u0661 \u0661\u0661\u0661\u0661 \u0661\u0661\u0661\u0661 \u0661\u0661\u0661\u0661 ok", "card [CARD_1] ok"},
		{"persian phone", "call (\u06f4\u06f1\u06f5) \u06f5\u06f5\u06f5-\u06f2\u06f6\u06f7\u06f1", "call [PHONE_1]"},
		{"same value, two spellings", "a john@example.com b j\u043ehn@example.com", "a [EMAIL_1] b [EMAIL_1]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := e.ScanRequest("redact", llm.ChatCompletions, chat(tc.text))
			require.NoError(t, err)
			require.Equal(t, DecisionRedact, r.Decision)
			require.True(t, json.Valid(r.NewBody))
			require.Equal(t, []string{tc.want}, contents(t, r.NewBody))
		})
	}
}

// Custom detectors written in another script still match: literals are
// folded like the text, and an expression's letters and letter classes
// take the folded letters too.
func TestCustomDetectorsFolded(t *testing.T) {
	e := newEngine(t, ProfileConfig{Name: "c",
		Custom: []CustomDetectorConfig{
			{Name: "word", Regex: `пароль:\s*\S+`},
			{Name: "cls", Regex: `(?i)код\s+[а-яё]+`},
			{Name: "prop", Regex: `\p{Greek}+ΚΩΔ`},
			{Name: "lit", Literals: []string{"Секретный проект"}},
			{Name: "digits", Regex: `#[٠-٩]{3}`},
		},
		Rules: []RuleConfig{
			{ID: "w", Detector: "custom.word", Action: "redact"},
			{ID: "c", Detector: "custom.cls", Action: "redact"},
			{ID: "p", Detector: "custom.prop", Action: "redact"},
			{ID: "l", Detector: "custom.lit", Action: "redact"},
			{ID: "d", Detector: "custom.digits", Action: "redact"},
		}})
	text := "мой пароль: абв123, КОД ромашка; ΑΛΦΑΚΩΔ; секретный ПРОЕКТ? Секретный проект! #٤٥٦"
	want := "мой [CUSTOM_WORD_1] [CUSTOM_CLS_1]; [CUSTOM_PROP_1]; секретный ПРОЕКТ? [CUSTOM_LIT_1]! [CUSTOM_DIGITS_1]"
	r, err := e.ScanRequest("c", llm.ChatCompletions, chat(text))
	require.NoError(t, err)
	require.Equal(t, []string{want}, contents(t, r.NewBody))
}
